//! [`ScoreBound`]: one end of a score range, inclusive, exclusive or infinite.

use crate::{Args, ToArg};

/// One end of a sorted-set score range, for the `min`/`max` of `ZRANGEBYSCORE`,
/// `ZREVRANGEBYSCORE`, `ZCOUNT`, `ZREMRANGEBYSCORE` and `ZRANGE … BYSCORE`.
///
/// Those arguments take any [`ToArg`]: a plain `f64` is an inclusive bound, and the server's
/// own spellings work as strings (`"(1.5"`, `"-inf"`, `"+inf"`). `ScoreBound` spells them for
/// you. A NaN bound is refused before sending ([`Error::Client`](crate::Error::Client)).
///
/// ```
/// use ringdis::{Client, Commands, ScoreBound};
///
/// let client = Client::open("redis://127.0.0.1:1")?;
/// let cmd = client
///     .zrangebyscore("board", ScoreBound::Exclusive(1.5), ScoreBound::PosInf)
///     .into_cmd();
/// assert_eq!(cmd.to_string(), "ZRANGEBYSCORE board (1.5 +inf");
/// let cmd = client.zcount("board", ScoreBound::NegInf, 10.0).into_cmd();
/// assert_eq!(cmd.to_string(), "ZCOUNT board -inf 10.0");
/// let cmd = client.zcount("board", "(1", "+inf").into_cmd();
/// assert_eq!(cmd.to_string(), "ZCOUNT board (1 +inf");
/// # Ok::<(), ringdis::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreBound {
    /// Scores equal to this one are in the range (`1.5`).
    Inclusive(f64),
    /// Scores equal to this one are not (`(1.5`).
    Exclusive(f64),
    /// Below every score: `-inf`.
    NegInf,
    /// Above every score: `+inf`.
    PosInf,
}

impl ToArg for ScoreBound {
    fn write_args(&self, out: &mut Args) {
        let (exclusive, score) = match *self {
            ScoreBound::Inclusive(s) => (false, s),
            ScoreBound::Exclusive(s) => (true, s),
            ScoreBound::NegInf => (false, f64::NEG_INFINITY),
            ScoreBound::PosInf => (false, f64::INFINITY),
        };
        let prefix = if exclusive { "(" } else { "" };
        if score.is_nan() {
            out.set_invalid("a score bound cannot be NaN");
            out.push_bytes(b"nan");
        } else if score.is_infinite() {
            let sign = if score > 0.0 { '+' } else { '-' };
            out.push_bytes(format!("{prefix}{sign}inf").as_bytes());
        } else {
            let mut b = ryu::Buffer::new();
            out.push_bytes(format!("{prefix}{}", b.format_finite(score)).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(b: ScoreBound) -> String {
        let mut out = Args::new();
        b.write_args(&mut out);
        assert_eq!(out.len(), 1);
        String::from_utf8(out.iter().next().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn spellings() {
        assert_eq!(arg(ScoreBound::Inclusive(1.5)), "1.5");
        assert_eq!(arg(ScoreBound::Exclusive(-2.0)), "(-2.0");
        assert_eq!(arg(ScoreBound::NegInf), "-inf");
        assert_eq!(arg(ScoreBound::PosInf), "+inf");
        assert_eq!(arg(ScoreBound::Exclusive(f64::INFINITY)), "(+inf");
        assert_eq!(arg(ScoreBound::Inclusive(1e300)), "1e300");
    }

    #[test]
    fn nan_is_refused() {
        let mut out = Args::new();
        ScoreBound::Exclusive(f64::NAN).write_args(&mut out);
        assert_eq!(out.invalid(), Some("a score bound cannot be NaN"));
    }
}
