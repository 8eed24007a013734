//! The clients under test, behind one small trait so workloads do not care whose they are.
//! A peer (redis-rs, fred, ...) is one more implementation of [`BenchClient`].

use ringdis::{cmd, Client, Config, Pipeline, Transport};
use std::future::Future;

/// What a workload needs from a client. Errors abort the benchmark: a benchmark that silently
/// counts failures measures nothing.
pub trait BenchClient: Clone + Send + Sync + 'static {
    /// A label for the report (e.g. `ringdis/io_uring`).
    fn name(&self) -> String;
    /// `GET key`, reply discarded after decoding.
    fn get(&self, key: &str) -> impl Future<Output = ()> + Send;
    /// `SET key value`.
    fn set(&self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send;
    /// `GET` of every key, as one pipeline.
    fn get_pipelined(&self, keys: &[String]) -> impl Future<Output = ()> + Send;
}

/// ringdis on one transport.
#[derive(Clone)]
pub struct Ringdis {
    client: Client,
}

impl Ringdis {
    /// A connected client on `transport` (forced: no silent fallback in a benchmark).
    pub async fn connect(url: &str, transport: Transport) -> Ringdis {
        let config = Config::from_url(url)
            .expect("benchmark URL parses")
            .transport(transport);
        let client = Client::new(config).expect("client");
        assert_eq!(client.transport(), transport);
        client.connect().await.expect("connect");
        Ringdis { client }
    }
}

impl BenchClient for Ringdis {
    fn name(&self) -> String {
        match self.client.transport() {
            Transport::IoUring => "ringdis/io_uring".to_owned(),
            Transport::Epoll => "ringdis/epoll".to_owned(),
            Transport::Auto => "ringdis/auto".to_owned(),
        }
    }

    fn get(&self, key: &str) -> impl Future<Output = ()> + Send {
        let call = self.client.call::<Option<Vec<u8>>>(cmd!("GET", key));
        async move {
            call.await.expect("GET");
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let call = self.client.call::<()>(cmd!("SET", key, value));
        async move {
            call.await.expect("SET");
        }
    }

    fn get_pipelined(&self, keys: &[String]) -> impl Future<Output = ()> + Send {
        let mut p: Pipeline = self.client.pipeline();
        for k in keys {
            p.add(cmd!("GET", k.as_str()));
        }
        let call = p.query::<Vec<Option<Vec<u8>>>>();
        async move {
            call.await.expect("pipeline");
        }
    }
}
