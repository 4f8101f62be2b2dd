//! RecordIO, the framing of Mesos' event streams: `<decimal length>\n<length bytes>` repeated.
//!
//! No crate implements it, so it lives here, shared by the master (which writes scheduler and
//! agent streams) and the agent (which reads its stream). The decoder is incremental: feed it
//! whatever chunks the transport delivers and take out whole records.
//!
//! ```
//! use shells::recordio::{encode, Decoder};
//! let mut wire = encode(br#"{"type":"HEARTBEAT"}"#);
//! wire.extend(encode(b"x"));
//! let mut d = Decoder::new(1 << 20);
//! d.push(&wire[..7]);
//! assert_eq!(d.next_record().unwrap(), None);
//! d.push(&wire[7..]);
//! assert_eq!(d.next_record().unwrap().unwrap(), br#"{"type":"HEARTBEAT"}"#.to_vec());
//! assert_eq!(d.next_record().unwrap().unwrap(), b"x".to_vec());
//! ```

use bytes::{Buf, BytesMut};

/// Frames one record.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 8);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
    out
}

/// A malformed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The length line is not a decimal number.
    #[error("invalid RecordIO length line `{0}`")]
    BadLength(String),
    /// A record is larger than the decoder accepts.
    #[error("RecordIO record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// An incremental RecordIO decoder with a bound on record size.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    pending_len: Option<usize>,
    max_record: usize,
}

impl Decoder {
    /// A decoder refusing records over `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            pending_len: None,
            max_record,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        loop {
            match self.pending_len {
                None => {
                    let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > 20 {
                            return Err(RecordIoError::BadLength(
                                String::from_utf8_lossy(&self.buf[..20]).into_owned(),
                            ));
                        }
                        return Ok(None);
                    };
                    let line = self.buf.split_to(nl + 1);
                    let text = std::str::from_utf8(&line[..nl]).unwrap_or("");
                    let len: usize = text.trim_end_matches('\r').parse().map_err(|_| {
                        RecordIoError::BadLength(String::from_utf8_lossy(&line[..nl]).into_owned())
                    })?;
                    if len > self.max_record {
                        return Err(RecordIoError::TooLarge {
                            size: len,
                            limit: self.max_record,
                        });
                    }
                    self.pending_len = Some(len);
                }
                Some(len) => {
                    if self.buf.len() < len {
                        return Ok(None);
                    }
                    let record = self.buf.split_to(len).to_vec();
                    self.pending_len = None;
                    if record.is_empty() {
                        continue;
                    }
                    return Ok(Some(record));
                }
            }
        }
    }

    /// Bytes received but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_at_a_time() {
        let mut wire = Vec::new();
        for r in ["a", "hello world", "{\"x\":1}"] {
            wire.extend(encode(r.as_bytes()));
        }
        let mut d = Decoder::new(1024);
        let mut out = Vec::new();
        for b in wire {
            d.push(&[b]);
            while let Some(r) = d.next_record().unwrap() {
                out.push(String::from_utf8(r).unwrap());
            }
        }
        assert_eq!(out, ["a", "hello world", "{\"x\":1}"]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        let mut d = Decoder::new(10);
        d.push(b"abc\n");
        assert_eq!(d.next_record(), Err(RecordIoError::BadLength("abc".into())));
        let mut d = Decoder::new(10);
        d.push(b"11\n");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::TooLarge {
                size: 11,
                limit: 10
            })
        );
        let mut d = Decoder::new(10);
        d.push(&[b'1'; 30]);
        assert!(d.next_record().is_err());
    }
}
