//! [`GeoMatch`]: one match of a geo query asked for more than names.

use crate::from_redis::check;
use crate::{Error, FromRedis, Result, Value};
use bytes::Bytes;

/// One match of `GEOSEARCH`, `GEORADIUS` or `GEORADIUSBYMEMBER` with `WITHDIST`, `WITHHASH`
/// or `WITHCOORD`: the member and whichever of those were asked for (the server sends them in
/// this order, whatever order the options were given in).
///
/// The default reply of those commands once one of the options is set is `Vec<GeoMatch>`; it
/// decodes the same over RESP2 and RESP3. A bare member (no option) decodes too, with every
/// extra `None`.
///
/// ```
/// use ringdis::{FromRedis, GeoMatch, Value};
///
/// let m = GeoMatch::from_redis(Value::Array(vec![
///     "Palermo".into(),
///     "190.4424".into(),
///     Value::Array(vec![Value::Double(13.36), Value::Double(38.11)]),
/// ]))?;
/// assert_eq!(m.member, "Palermo");
/// assert_eq!(m.dist, Some(190.4424));
/// assert_eq!(m.hash, None);
/// assert_eq!(m.coord, Some((13.36, 38.11)));
/// # Ok::<(), ringdis::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GeoMatch {
    /// The member's name.
    pub member: Bytes,
    /// Its distance from the centre, in the query's unit (`WITHDIST`).
    pub dist: Option<f64>,
    /// Its 52-bit geohash, as an integer (`WITHHASH`).
    pub hash: Option<i64>,
    /// Its `(longitude, latitude)` (`WITHCOORD`).
    pub coord: Option<(f64, f64)>,
}

impl FromRedis for GeoMatch {
    /// From `[member, dist?, hash?, [longitude, latitude]?]` (told apart by kind: the distance
    /// is text or a double, the hash an integer, the coordinates an array of two), or from a
    /// bare member.
    fn from_redis(value: Value) -> Result<Self> {
        let items = match check(value)? {
            Value::Array(items) if !items.is_empty() => items,
            v @ (Value::Bulk(_) | Value::Simple(_) | Value::Verbatim { .. }) => {
                return Ok(GeoMatch {
                    member: Bytes::from_redis(v)?,
                    dist: None,
                    hash: None,
                    coord: None,
                })
            }
            v => return Err(Error::decode("geo match (member, dist, hash, coord)", &v)),
        };
        let mut it = items.into_iter();
        let member = Bytes::from_redis(it.next().unwrap_or(Value::Nil))
            .map_err(|e| e.in_field(format_args!("member")))?;
        let mut m = GeoMatch {
            member,
            dist: None,
            hash: None,
            coord: None,
        };
        for v in it {
            match v {
                Value::Int(h) if m.hash.is_none() && m.coord.is_none() => m.hash = Some(h),
                Value::Array(_) if m.coord.is_none() => {
                    m.coord = Some(FromRedis::from_redis(v).map_err(|e| e.in_field("coord"))?)
                }
                v @ (Value::Bulk(_) | Value::Double(_))
                    if m.dist.is_none() && m.hash.is_none() && m.coord.is_none() =>
                {
                    m.dist = Some(f64::from_redis(v).map_err(|e| e.in_field("dist"))?)
                }
                v => return Err(Error::decode("geo match (member, dist, hash, coord)", &v)),
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coord(resp3: bool) -> Value {
        if resp3 {
            Value::Array(vec![Value::Double(13.5), Value::Double(38.25)])
        } else {
            Value::Array(vec!["13.5".into(), "38.25".into()])
        }
    }

    #[test]
    fn every_combination_in_both_protocols() {
        for resp3 in [false, true] {
            let all = GeoMatch::from_redis(Value::Array(vec![
                "p".into(),
                "1.5".into(),
                Value::Int(7),
                coord(resp3),
            ]))
            .unwrap();
            assert_eq!(
                all,
                GeoMatch {
                    member: "p".into(),
                    dist: Some(1.5),
                    hash: Some(7),
                    coord: Some((13.5, 38.25))
                }
            );
            let c = GeoMatch::from_redis(Value::Array(vec!["p".into(), coord(resp3)])).unwrap();
            assert_eq!((c.dist, c.hash, c.coord), (None, None, Some((13.5, 38.25))));
        }
        let h = GeoMatch::from_redis(Value::Array(vec!["p".into(), Value::Int(3)])).unwrap();
        assert_eq!((h.dist, h.hash, h.coord), (None, Some(3), None));
        let bare = GeoMatch::from_redis("p".into()).unwrap();
        assert_eq!((bare.member, bare.dist), (Bytes::from("p"), None));
    }

    #[test]
    fn out_of_order_or_foreign_elements_are_decode_errors() {
        for bad in [
            Value::Array(vec!["p".into(), Value::Int(3), "1.5".into()]),
            Value::Array(vec!["p".into(), Value::Int(3), Value::Int(4)]),
            Value::Array(vec!["p".into(), Value::Boolean(true)]),
            Value::Array(vec![]),
            Value::Int(1),
            Value::Array(vec!["p".into(), Value::Array(vec!["x".into()])]),
        ] {
            assert!(
                matches!(GeoMatch::from_redis(bad.clone()), Err(Error::Decode { .. })),
                "{bad:?}"
            );
        }
    }
}
