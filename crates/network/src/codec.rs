//! The request-response wire format: one CBOR value per stream each way, as libp2p's
//! `request_response::cbor` codec writes it, with two differences that codec cannot offer:
//!
//! - A request that does not decode (or is too large) is handed to the network task as
//!   [`RequestFrame::Malformed`], so the sender can be banned. With libp2p's codec a decode
//!   error ends the stream inside the connection handler and the behaviour never learns of it.
//! - Size limits are checked explicitly (read one byte past the limit) rather than by a
//!   truncated read that surfaces as an end-of-file decode error.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    Status,
    config::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES},
};

/// A request as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Request {
    /// "Here is my status; what is yours?" Sent on every new connection (the handshake)
    /// and whenever the node asks for a peer's status.
    Status(Status),
    /// Canonical blocks `start..start + count`; the server clamps `count`.
    Blocks { start: u64, count: u64 },
}

/// What the codec yields for an inbound request.
#[derive(Debug)]
pub(crate) enum RequestFrame {
    Valid(Request),
    /// The peer sent bytes that are not a request: the reason, for the ban log.
    Malformed(String),
}

/// A response as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Response {
    Status(Status),
    /// Block RLPs, each a CBOR byte string.
    Blocks(Vec<ByteBuf>),
    Error(ServeError),
}

/// Why a peer refused to serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServeError {
    /// The requester exceeded its request rate.
    #[error("request rate exceeded")]
    RateLimited,
    /// The server is serving as many requests as it allows at once.
    #[error("server busy")]
    Busy,
    /// The requester's status names another genesis.
    #[error("different genesis")]
    WrongGenesis,
    /// The server could not read its chain.
    #[error("chain unavailable")]
    Unavailable,
}

/// The request-response codec; see the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct WireCodec;

/// Reads the whole stream, at most `max` bytes; `Ok(None)` if it is longer.
async fn read_bounded<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    Ok((buf.len() <= max).then_some(buf))
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(io::Error::other)
}

pub(crate) fn decode_request(bytes: &[u8]) -> RequestFrame {
    match cbor4ii::serde::from_slice::<Request>(bytes) {
        Ok(request) => RequestFrame::Valid(request),
        Err(e) => {
            RequestFrame::Malformed(format!("undecodable request ({} bytes): {e}", bytes.len()))
        }
    }
}

impl libp2p::request_response::Codec for WireCodec {
    type Protocol = StreamProtocol;
    type Request = RequestFrame;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RequestFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(match read_bounded(io, MAX_REQUEST_BYTES).await? {
            Some(bytes) => decode_request(&bytes),
            None => {
                RequestFrame::Malformed(format!("request larger than {MAX_REQUEST_BYTES} bytes"))
            }
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_bounded(io, MAX_RESPONSE_BYTES).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
            )
        })?;
        cbor4ii::serde::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("undecodable response: {e}"),
            )
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RequestFrame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let RequestFrame::Valid(request) = req else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a malformed request is never sent",
            ));
        };
        io.write_all(&encode(&request)?).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = encode(&res)?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "response of {} bytes exceeds {MAX_RESPONSE_BYTES}",
                    bytes.len()
                ),
            ));
        }
        io.write_all(&bytes).await
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{B256, U256};

    use super::*;

    fn status() -> Status {
        Status {
            genesis_hash: B256::repeat_byte(1),
            head_number: 42,
            head_hash: B256::repeat_byte(2),
            total_difficulty: U256::from(1_000_000u64),
        }
    }

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Status(status()),
            Request::Blocks {
                start: 7,
                count: u64::MAX,
            },
        ] {
            let bytes = encode(&request).unwrap();
            match decode_request(&bytes) {
                RequestFrame::Valid(decoded) => assert_eq!(decoded, request),
                RequestFrame::Malformed(reason) => panic!("{reason}"),
            }
        }
        assert!(matches!(
            decode_request(b"\xff\x00garbage"),
            RequestFrame::Malformed(_)
        ));
        let other_type = encode(&"a string, not a request").unwrap();
        assert!(matches!(
            decode_request(&other_type),
            RequestFrame::Malformed(_)
        ));
    }

    #[test]
    fn blocks_are_cbor_byte_strings() {
        // 0x80..0xff would each take two bytes as CBOR integers in an array.
        let block = vec![0xabu8; 1000];
        let response = Response::Blocks(vec![ByteBuf::from(block.clone()); 3]);
        let bytes = encode(&response).unwrap();
        assert!(
            bytes.len() < 3 * 1000 + 64,
            "encoded {} bytes: payload is not a byte string",
            bytes.len()
        );
        let decoded: Response = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(decoded, response);
        let status_bytes = encode(&Response::Status(status())).unwrap();
        assert!(
            status_bytes.len() < 200,
            "status encoded in {} bytes",
            status_bytes.len()
        );
    }

    #[tokio::test]
    async fn oversized_requests_are_malformed_not_io_errors() {
        use libp2p::request_response::Codec;
        let protocol = StreamProtocol::new("/test");
        let mut big = futures::io::Cursor::new(vec![0u8; MAX_REQUEST_BYTES + 1]);
        let frame = WireCodec.read_request(&protocol, &mut big).await.unwrap();
        assert!(
            matches!(frame, RequestFrame::Malformed(ref r) if r.contains("larger")),
            "{frame:?}"
        );
        let mut ok =
            futures::io::Cursor::new(encode(&Request::Blocks { start: 1, count: 2 }).unwrap());
        let frame = WireCodec.read_request(&protocol, &mut ok).await.unwrap();
        assert!(matches!(
            frame,
            RequestFrame::Valid(Request::Blocks { start: 1, count: 2 })
        ));
    }
}
