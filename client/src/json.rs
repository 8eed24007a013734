//! [`Json`]: values stored as JSON text (feature `json`).

use crate::from_redis::check;
use crate::{Args, Error, FromRedis, Result, ToArg, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Cow;

/// A value stored as JSON text: the common "JSON blob in a key (or hash field)" pattern.
///
/// `Json<T>` decodes from any string reply holding JSON, for any `T: Deserialize`, and is sent
/// as one argument holding the JSON encoding of any `T: Serialize` (through `serde_json`). It
/// works as a reply type, an argument, and a field of a `#[derive(FromRedis, ToRedis)]` struct.
/// Needs the `json` feature.
///
/// ```
/// use ringdis::{cmd, FromRedis, Json, Value};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Session { user: String, scopes: Vec<String> }
///
/// let s = Session { user: "ada".into(), scopes: vec!["read".into()] };
/// let set = cmd!("SET", "session:1", Json(&s));
/// assert_eq!(set.to_string(), r#"SET session:1 {"user":"ada","scopes":["read"]}"#);
///
/// // What `GET session:1` returns:
/// let reply = Value::Bulk(r#"{"user":"ada","scopes":["read"]}"#.into());
/// let Json(back) = Json::<Session>::from_redis(reply)?;
/// assert_eq!(back, s);
///
/// let err = Json::<Session>::from_redis(Value::Bulk(r#"{"user":1}"#.into())).unwrap_err();
/// assert!(err.to_string().starts_with("decode error: expected JSON (invalid type: integer `1`"), "{err}");
/// # Ok::<(), ringdis::Error>(())
/// ```
///
/// When `T`'s `Serialize` implementation fails (for ordinary types, only a map whose keys are
/// not strings), nothing is sent: the call fails with [`Error::Client`](crate::Error::Client)
/// saying why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned> FromRedis for Json<T> {
    /// From a string reply holding JSON.
    fn from_redis(value: Value) -> Result<Self> {
        let value = check(value)?;
        let Some(text) = value.as_bytes() else {
            return Err(Error::decode("JSON text", &value));
        };
        serde_json::from_slice(text)
            .map(Json)
            .map_err(|e| Error::Decode {
                path: String::new(),
                expected: Cow::Owned(format!("JSON ({e})")),
                got: value.describe(),
            })
    }
}

impl<T: Serialize> ToArg for Json<T> {
    fn write_args(&self, out: &mut Args) {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => out.push_bytes(&bytes),
            Err(e) => out.set_invalid(format!(
                "Json<{}>: cannot encode as JSON: {e}",
                std::any::type_name::<T>()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn round_trips_through_one_argument() {
        let mut m = BTreeMap::new();
        m.insert("a".to_owned(), vec![1, 2]);
        let mut args = Args::new();
        Json(&m).write_args(&mut args);
        assert_eq!(args.len(), 1);
        let sent = args.iter().next().unwrap().to_vec();
        assert_eq!(sent, br#"{"a":[1,2]}"#);
        let back: Json<BTreeMap<String, Vec<i32>>> =
            FromRedis::from_redis(Value::Bulk(sent.into())).unwrap();
        assert_eq!(back.into_inner(), m);
    }

    #[test]
    fn json_fields_in_derived_structs() {
        use crate::{FromRedis, ToRedis};
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
        struct Prefs {
            theme: String,
            langs: Vec<String>,
        }
        #[derive(FromRedis, ToRedis, Debug, PartialEq)]
        struct User {
            name: String,
            prefs: Json<Prefs>,
            extra: Option<Json<Vec<u8>>>,
        }
        let user = User {
            name: "ada".into(),
            prefs: Json(Prefs {
                theme: "dark".into(),
                langs: vec!["en".into(), "fr".into()],
            }),
            extra: None,
        };
        let mut args = Args::new();
        user.write_args(&mut args);
        let sent: Vec<Value> = args
            .iter()
            .map(|a| Value::Bulk(a.to_vec().into()))
            .collect();
        assert_eq!(
            sent[3],
            Value::Bulk(r#"{"theme":"dark","langs":["en","fr"]}"#.into())
        );
        assert_eq!(User::from_redis(Value::Array(sent)).unwrap(), user);
        let bad = Value::Array(vec![
            Value::Bulk("name".into()),
            Value::Bulk("ada".into()),
            Value::Bulk("prefs".into()),
            Value::Bulk("{}".into()),
        ]);
        let e = User::from_redis(bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("decode error: User.prefs: expected JSON (missing field `theme`"),
            "{e}"
        );
    }

    #[test]
    fn non_strings_and_bad_json_are_decode_errors() {
        let e = Json::<i32>::from_redis(Value::Int(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "decode error: expected JSON text, got integer 1"
        );
        let e = Json::<i32>::from_redis(Value::Bulk("{".into())).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(e.to_string().ends_with(r#"got bulk string "{""#), "{e}");
        let o: Option<Json<i32>> = FromRedis::from_redis(Value::Nil).unwrap();
        assert_eq!(o, None);
    }

    #[test]
    fn a_value_json_cannot_encode_fails_the_call_instead_of_panicking() {
        use std::collections::HashMap;
        let bad: HashMap<(i32, i32), i32> = [((1, 2), 3)].into_iter().collect();
        let cmd = crate::cmd!("SET", "k", Json(bad));
        let why = cmd.args().invalid().expect("marked invalid");
        assert!(why.contains("cannot encode as JSON"), "{why}");
        let mut p = crate::Client::open("redis://127.0.0.1:1")
            .unwrap()
            .pipeline();
        p.add(cmd);
        let err = futures::executor::block_on(p.query::<()>()).unwrap_err();
        assert!(matches!(err, crate::Error::Client { .. }), "{err}");
    }
}
