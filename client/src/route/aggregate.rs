//! The replies of a command sent to many nodes, made one as its `response_policy` tip says
//! (the rules of the Redis command-tips reference).
//!
//! The replies come in the order the caller sent the command to the nodes; an `Err` is a
//! node's error reply (or a failed call to it).
//!
//! | policy | reply |
//! | --- | --- |
//! | `agg_sum`, `agg_min`, `agg_max` | the sum, least or greatest of the integer replies (`DBSIZE`, `WAIT`) |
//! | `agg_logical_and`, `agg_logical_or` | AND/OR of integer (0/1) or boolean replies, element-wise for arrays of them (`SCRIPT EXISTS`): 1/0 (or a boolean, as the replies were) |
//! | `all_succeeded` | the first error if any node failed, else the first reply (`FLUSHALL`, `CONFIG SET`) |
//! | `one_succeeded` | the first reply that is not an error, else the first error (`SCRIPT KILL`) |
//! | none (`Default`) | the first error if any node failed; else, when every reply is an array (or set), one array of all their elements, node after node (`KEYS`: every key); otherwise an array of every node's reply, in the nodes' order |
//! | `special` | (the cluster client handles each by name) as `Default` |
//!
//! Every policy but `one_succeeded` fails with a node's error, so a partial answer never passes
//! for a whole one.

use super::tips::ResponsePolicy;
use crate::{Error, Result, Value};

/// The replies of every node the command went to, made one as `policy` says (see the module).
///
/// # Errors
///
/// A node's error (see the module for which); [`Error::Decode`] when `agg_*` meets a reply
/// that is not an integer (or, for the logical ones, arrays of different lengths);
/// [`Error::Client`] when there are no replies.
pub(crate) fn aggregate(policy: ResponsePolicy, replies: Vec<Result<Value>>) -> Result<Value> {
    if replies.is_empty() {
        return Err(Error::client("no node to send the command to"));
    }
    if policy == ResponsePolicy::OneSucceeded {
        let mut first_err = None;
        for r in replies {
            match r {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        return Err(first_err.unwrap_or_else(|| Error::client("no node replied")));
    }
    let replies = replies.into_iter().collect::<Result<Vec<Value>>>()?;
    let mut replies = replies.into_iter();
    let Some(first) = replies.next() else {
        return Err(Error::client("no node replied"));
    };
    match policy {
        ResponsePolicy::AllSucceeded => Ok(first),
        ResponsePolicy::AggSum => fold_int(first, replies, "agg_sum", i64::checked_add),
        ResponsePolicy::AggMin => fold_int(first, replies, "agg_min", |a, b| Some(a.min(b))),
        ResponsePolicy::AggMax => fold_int(first, replies, "agg_max", |a, b| Some(a.max(b))),
        ResponsePolicy::AggLogicalAnd => replies.try_fold(first, |a, b| logical(a, b, true)),
        ResponsePolicy::AggLogicalOr => replies.try_fold(first, |a, b| logical(a, b, false)),
        ResponsePolicy::Default | ResponsePolicy::Special | ResponsePolicy::OneSucceeded => {
            Ok(collect(first, replies))
        }
    }
}

fn int(v: &Value, policy: &'static str) -> Result<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(Error::decode(
            format!("an integer from every node ({policy})"),
            other,
        )),
    }
}

fn fold_int(
    first: Value,
    rest: impl Iterator<Item = Value>,
    policy: &'static str,
    f: impl Fn(i64, i64) -> Option<i64>,
) -> Result<Value> {
    let mut acc = int(&first, policy)?;
    for v in rest {
        let n = int(&v, policy)?;
        acc = f(acc, n)
            .ok_or_else(|| Error::decode(format!("integers whose {policy} fits in 64 bits"), &v))?;
    }
    Ok(Value::Int(acc))
}

/// `a AND b` (or OR): integers 0/1 (any non-zero is true), booleans, or arrays of them
/// element-wise (of one length).
fn logical(a: Value, b: Value, and: bool) -> Result<Value> {
    let policy = if and {
        "agg_logical_and"
    } else {
        "agg_logical_or"
    };
    let op = |x: bool, y: bool| if and { x && y } else { x || y };
    match (a, b) {
        (Value::Array(xs), Value::Array(ys)) => {
            if xs.len() != ys.len() {
                return Err(Error::decode(
                    format!("arrays of {} elements from every node ({policy})", xs.len()),
                    &Value::Array(ys),
                ));
            }
            let merged = xs
                .into_iter()
                .zip(ys)
                .map(|(x, y)| logical(x, y, and))
                .collect::<Result<_>>()?;
            Ok(Value::Array(merged))
        }
        (Value::Boolean(x), y) => Ok(Value::Boolean(op(x, truth(&y, policy)?))),
        (x @ Value::Int(_), y) => Ok(Value::Int(i64::from(op(
            truth(&x, policy)?,
            truth(&y, policy)?,
        )))),
        (x, _) => Err(Error::decode(
            format!("integers, booleans or arrays of them from every node ({policy})"),
            &x,
        )),
    }
}

fn truth(v: &Value, policy: &'static str) -> Result<bool> {
    match v {
        Value::Int(n) => Ok(*n != 0),
        Value::Boolean(b) => Ok(*b),
        other => Err(Error::decode(
            format!("integers or booleans from every node ({policy})"),
            other,
        )),
    }
}

/// No policy: one array of every array's elements when all replies are arrays (or sets),
/// else an array of the replies.
fn collect(first: Value, rest: impl Iterator<Item = Value>) -> Value {
    let all: Vec<Value> = std::iter::once(first).chain(rest).collect();
    if all
        .iter()
        .all(|v| matches!(v, Value::Array(_) | Value::Set(_)))
    {
        let mut out = Vec::with_capacity(
            all.iter()
                .map(|v| match v {
                    Value::Array(x) | Value::Set(x) => x.len(),
                    _ => 0,
                })
                .sum(),
        );
        for v in all {
            if let Value::Array(x) | Value::Set(x) = v {
                out.extend(x);
            }
        }
        return Value::Array(out);
    }
    Value::Array(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponsePolicy as P;

    fn err(kind: &str) -> Error {
        Error::Server {
            kind: kind.into(),
            message: "m".into(),
        }
    }
    fn ints(v: &[i64]) -> Vec<Result<Value>> {
        v.iter().map(|n| Ok(Value::Int(*n))).collect()
    }
    fn arr(v: &[i64]) -> Value {
        Value::Array(v.iter().map(|n| Value::Int(*n)).collect())
    }
    fn ok() -> Value {
        Value::Simple("OK".into())
    }

    #[test]
    fn sums_minima_maxima() {
        assert_eq!(aggregate(P::AggSum, ints(&[3, 0, 4])), Ok(Value::Int(7)));
        assert_eq!(aggregate(P::AggMin, ints(&[3, 1, 4])), Ok(Value::Int(1)));
        assert_eq!(aggregate(P::AggMax, ints(&[3, 1, 4])), Ok(Value::Int(4)));
        assert_eq!(aggregate(P::AggSum, ints(&[5])), Ok(Value::Int(5)));
        // Not an integer; an overflow; a node's error.
        let e = aggregate(P::AggSum, vec![Ok(Value::Int(1)), Ok(ok())]).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(e.to_string().contains("agg_sum"), "{e}");
        assert!(aggregate(P::AggSum, ints(&[i64::MAX, 1])).is_err());
        assert_eq!(
            aggregate(P::AggMin, vec![Ok(Value::Int(1)), Err(err("CLUSTERDOWN"))]),
            Err(err("CLUSTERDOWN"))
        );
    }

    #[test]
    fn logical_and_or() {
        // SCRIPT EXISTS: element-wise.
        let replies = vec![Ok(arr(&[1, 1, 0])), Ok(arr(&[1, 0, 0]))];
        assert_eq!(
            aggregate(P::AggLogicalAnd, replies.clone()),
            Ok(arr(&[1, 0, 0]))
        );
        assert_eq!(aggregate(P::AggLogicalOr, replies), Ok(arr(&[1, 1, 0])));
        assert_eq!(
            aggregate(P::AggLogicalAnd, ints(&[1, 1])),
            Ok(Value::Int(1))
        );
        assert_eq!(aggregate(P::AggLogicalOr, ints(&[0, 0])), Ok(Value::Int(0)));
        assert_eq!(
            aggregate(
                P::AggLogicalAnd,
                vec![Ok(Value::Boolean(true)), Ok(Value::Boolean(false))]
            ),
            Ok(Value::Boolean(false))
        );
        // Arrays of different lengths, or of something else.
        assert!(aggregate(P::AggLogicalAnd, vec![Ok(arr(&[1])), Ok(arr(&[1, 1]))]).is_err());
        assert!(aggregate(P::AggLogicalOr, vec![Ok(ok()), Ok(ok())]).is_err());
    }

    #[test]
    fn all_and_one_succeeded() {
        assert_eq!(
            aggregate(P::AllSucceeded, vec![Ok(ok()), Ok(ok())]),
            Ok(ok())
        );
        assert_eq!(
            aggregate(
                P::AllSucceeded,
                vec![Ok(ok()), Err(err("A")), Err(err("B"))]
            ),
            Err(err("A"))
        );
        assert_eq!(
            aggregate(P::OneSucceeded, vec![Err(err("NOTBUSY")), Ok(ok())]),
            Ok(ok())
        );
        assert_eq!(
            aggregate(P::OneSucceeded, vec![Err(err("A")), Err(err("B"))]),
            Err(err("A"))
        );
    }

    #[test]
    fn no_policy_collects_every_reply() {
        // KEYS: one array of every node's keys.
        let keys = |k: &[&str]| {
            Value::Array(
                k.iter()
                    .map(|s| Value::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes())))
                    .collect(),
            )
        };
        assert_eq!(
            aggregate(
                P::Default,
                vec![Ok(keys(&["a", "b"])), Ok(keys(&[])), Ok(keys(&["c"]))]
            ),
            Ok(keys(&["a", "b", "c"]))
        );
        // Replies of other shapes: an array of them, in the nodes' order.
        assert_eq!(
            aggregate(P::Default, vec![Ok(Value::Int(1)), Ok(ok())]),
            Ok(Value::Array(vec![Value::Int(1), ok()]))
        );
        assert_eq!(
            aggregate(P::Special, vec![Ok(ok()), Err(err("X"))]),
            Err(err("X"))
        );
        assert!(matches!(
            aggregate(P::Default, Vec::new()),
            Err(Error::Client { .. })
        ));
    }
}
