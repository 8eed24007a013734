//! Cluster slots: which of the 16384 slots a key lives in (what `CLUSTER KEYSLOT` answers).
//!
//! A key's slot is CRC16-XMODEM of the key modulo 16384, as the Redis Cluster specification
//! says, except that a key holding a *hash tag* hashes only the tag: the bytes between the first
//! `{` and the first `}` after it, when there is at least one byte between them. So
//! `{user1000}.following` and `{user1000}.followers` share a slot, while `foo{}{bar}` hashes
//! the whole key.

/// How many slots a cluster has.
pub const SLOTS: u16 = 16384;

/// The cluster slot (`0..16384`) of `key` (a `&str`, `String`, `&[u8]`, `Bytes`…), honouring
/// `{hash tags}`: what `CLUSTER KEYSLOT` answers.
///
/// ```
/// assert_eq!(ringdis::slot(b"foo"), 12182);
/// assert_eq!(ringdis::slot("foo"), 12182);
/// assert_eq!(ringdis::slot(format!("user:{}", 1)), ringdis::slot(b"user:1"));
/// // A hash tag puts related keys in one slot.
/// assert_eq!(ringdis::slot(b"{user1000}.following"), ringdis::slot(b"{user1000}.followers"));
/// assert_eq!(ringdis::slot(b"{user1000}.following"), ringdis::slot(b"user1000"));
/// ```
#[inline]
pub fn slot(key: impl AsRef<[u8]>) -> u16 {
    key_slot(key.as_ref())
}

/// [`slot`] of bytes.
fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hashed(key)) & (SLOTS - 1)
}

/// The part of `key` that is hashed: its hash tag, when it has a non-empty one, else all of it.
fn hashed(key: &[u8]) -> &[u8] {
    let Some(open) = find(b'{', key) else {
        return key;
    };
    let after = &key[open + 1..];
    match find(b'}', after) {
        Some(close) if close > 0 => &after[..close],
        _ => key,
    }
}

/// The first `byte` in `hay`: a plain loop for a short key (most are: cheaper than `memchr`'s
/// dispatch to its vector code), `memchr` for a long one.
#[inline]
fn find(byte: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < 64 {
        hay.iter().position(|&b| b == byte)
    } else {
        memchr::memchr(byte, hay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_xmodem_is_the_checksum() {
        // The CRC catalogue's check value for CRC-16/XMODEM over "123456789".
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
        assert_eq!(slot(b"123456789"), 0x31C3 & 16383);
        assert_eq!(slot(b"123456789"), 12739);
    }

    #[test]
    fn known_slots() {
        // What `CLUSTER KEYSLOT` answers (also checked against a server in
        // tests/tests/cluster_spec.rs).
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"somekey"), 11058);
        assert_eq!(slot(b""), 0);
        assert!((0..1000).all(|i| slot(format!("key:{i}").as_bytes()) < SLOTS));
    }

    #[test]
    fn hash_tags() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag: the whole key.
        assert_eq!(hashed(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(
            slot(b"foo{}{bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") & 16383
        );
        // The first `{`, then the first `}` after it.
        assert_eq!(hashed(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(hashed(b"foo{bar}{zap}"), b"bar");
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
        // No closing brace, or a `}` only before the `{`: the whole key.
        assert_eq!(hashed(b"foo{bar"), b"foo{bar");
        assert_eq!(hashed(b"foo}bar{"), b"foo}bar{");
        assert_eq!(hashed(b"}{a}"), b"a");
        assert_eq!(hashed(b"{}"), b"{}");
        // Binary keys.
        assert_eq!(hashed(b"\xff{\x00\x01}"), b"\x00\x01");
        // Long keys (searched by memchr) as short ones (by a loop), on both sides of 64 bytes.
        for len in [62, 63, 64, 65, 200] {
            let mut key = vec![b'x'; len];
            key.extend_from_slice(b"{tag}");
            assert_eq!(hashed(&key), b"tag", "{len}");
            let mut key = b"a{".to_vec();
            key.extend(std::iter::repeat_n(b'y', len));
            key.push(b'}');
            assert_eq!(hashed(&key), &key[2..key.len() - 1], "{len}");
            assert_eq!(
                hashed(&key[..key.len() - 1]),
                &key[..key.len() - 1],
                "{len}"
            );
        }
    }
}
