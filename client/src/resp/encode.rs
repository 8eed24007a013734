//! Writes commands as RESP arrays of bulk strings.

use bytes::{BufMut, BytesMut};

/// Writes the array header `*<argc>\r\n` of a command.
pub fn write_command_header(out: &mut BytesMut, argc: usize) {
    let mut n = itoa::Buffer::new();
    let digits = n.format(argc).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(b'*');
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// Writes one whole command: the array header, then `args`, which must already be `argc`
/// encoded bulk strings (as [`Args`](crate::Args) holds them).
pub fn write_command(out: &mut BytesMut, argc: usize, args: &[u8]) {
    write_command_header(out, argc);
    out.extend_from_slice(args);
}

/// Appends one bulk string `$<len>\r\n<bytes>\r\n`.
pub(crate) fn write_bulk(out: &mut BytesMut, bytes: &[u8]) {
    let mut n = itoa::Buffer::new();
    let digits = n.format(bytes.len()).as_bytes();
    out.reserve(digits.len() + bytes.len() + 5);
    out.put_u8(b'$');
    out.put_slice(digits);
    out.put_slice(b"\r\n");
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut args = BytesMut::new();
        write_bulk(&mut args, b"GET");
        write_bulk(&mut args, b"");
        let mut out = BytesMut::new();
        write_command(&mut out, 2, &args);
        assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    }
}
