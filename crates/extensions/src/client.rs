//! A client of an extension manager's or an extension's socket.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TMapIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TSerializable, TStructIdentifier, TType,
    verify_expected_message_type, verify_expected_sequence_number, verify_expected_service_call,
};
use thrift::transport::{ReadHalf, TBufferedWriteTransport, TIoChannel, WriteHalf};
use thrift::{
    ApplicationError, ApplicationErrorKind, ProtocolError, ProtocolErrorKind, TConfiguration,
    TThriftClient,
};

use crate::generated::{
    ExtensionStatus, TExtensionManagerSyncClientMarker, TExtensionSyncClientMarker,
};

/// The read side's buffer: a table's answer arrives in large writes, so fewer reads.
const READ_CAPACITY: usize = 64 << 10;
/// The longest string an answer may carry: the thrift crate's default, as the
/// generated calls read them.
const STRING_MAX: usize = TConfiguration::DEFAULT_STRING_LIMIT;

type Input = TBinaryInputProtocol<BufReader<ReadHalf<UnixStream>>>;
type Output = TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<UnixStream>>>;

/// What a call through a socket can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error(transparent)]
    Thrift(#[from] thrift::Error),
}

/// A connection to one socket. The `ExtensionManager` client speaks the `Extension`
/// calls too (`ping`, `call`, `shutdown`), so one type serves both kinds of socket.
pub struct Client {
    inner: Calls,
}

/// Every call of both services (`TExtensionSyncClient`, `TExtensionManagerSyncClient`)
/// on one connection. Our own client rather than the generated one, whose input protocol
/// is reachable only as a `dyn TInputProtocol`: [`Client::call_rows`] reads the rows'
/// strings straight from the buffered stream.
pub struct Calls {
    input: Input,
    output: Output,
    sequence: i32,
}

impl TThriftClient for Calls {
    fn i_prot_mut(&mut self) -> &mut dyn TInputProtocol {
        &mut self.input
    }
    fn o_prot_mut(&mut self) -> &mut dyn TOutputProtocol {
        &mut self.output
    }
    fn sequence_number(&self) -> i32 {
        self.sequence
    }
    fn increment_sequence_number(&mut self) -> i32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }
}

impl TExtensionSyncClientMarker for Calls {}
impl TExtensionManagerSyncClientMarker for Calls {}

impl Client {
    /// Connects to `path`; every read and write then waits at most `timeout`
    /// (`--thrift_timeout`).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_error)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(connect_error)?;
        let (read, write) = stream.split()?;
        // Non-strict reads, as the SDKs may answer without the version header.
        let input = TBinaryInputProtocol::new(BufReader::with_capacity(READ_CAPACITY, read), false);
        let output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true);
        Ok(Client {
            inner: Calls {
                input,
                output,
                sequence: 0,
            },
        })
    }

    /// The calls of both services (`TExtensionSyncClient`, `TExtensionManagerSyncClient`).
    pub fn calls(&mut self) -> &mut Calls {
        &mut self.inner
    }
}

/// The status of a `call` whose rows went to a callback ([`Client::call_rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    pub code: i32,
    pub message: String,
}

/// One row of a `call` answer as it was read: its entries' keys and values as sent
/// (bytes, not checked as UTF-8), in the order sent. It borrows the stream's buffer
/// when the whole row is there (nearly always), else a buffer reused for every row.
#[derive(Debug, Clone, Copy)]
pub struct RowEntries<'a> {
    bytes: &'a [u8],
    spans: &'a [Entry],
}

/// Where one entry's key and value lie in [`RowEntries`]' bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    key: (usize, usize),
    value: (usize, usize),
}

impl<'a> RowEntries<'a> {
    /// The entries, `(key, value)`, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + use<'a> {
        let bytes = self.bytes;
        self.spans
            .iter()
            .map(move |e| (&bytes[e.key.0..e.key.1], &bytes[e.value.0..e.value.1]))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Entries owned, for rows that straddle the stream's buffer (and for tests).
#[derive(Debug, Default)]
pub struct OwnedEntries {
    bytes: Vec<u8>,
    spans: Vec<Entry>,
}

impl OwnedEntries {
    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Adds an entry after the others.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.spans.push(Entry {
            key: (start, key_end),
            value: (key_end, self.bytes.len()),
        });
    }

    pub fn entries(&self) -> RowEntries<'_> {
        RowEntries {
            bytes: &self.bytes,
            spans: &self.spans,
        }
    }
}

/// Where the rows of a `call` answer go as they are read ([`Client::call_rows`]). A
/// closure taking each row is one.
pub trait AnswerRows {
    /// The answer's list header announces `rows` rows: a hint for sizing, which a
    /// misbehaving extension may get wrong.
    fn announced(&mut self, _rows: usize) {}

    /// One row; false stops the handing over (the rest is read and dropped).
    fn row(&mut self, entries: &RowEntries<'_>) -> bool;
}

impl<F: FnMut(&RowEntries<'_>) -> bool> AnswerRows for F {
    fn row(&mut self, entries: &RowEntries<'_>) -> bool {
        self(entries)
    }
}

impl Client {
    /// `call(registry, item, request)`, handing each row of the answer to `rows` as it
    /// is read instead of building the whole answer: a row is read in place in the
    /// stream's buffer (or copied into one buffer reused for every row when it straddles
    /// a refill), so a table of many rows allocates nothing per row here. Once `rows`
    /// declines a row the rest is read and dropped, so the connection stays in step.
    pub fn call_rows(
        &mut self,
        registry: &str,
        item: &str,
        request: &BTreeMap<String, String>,
        mut rows: impl AnswerRows,
    ) -> thrift::Result<CallStatus> {
        let client = &mut self.inner;
        let sequence = client.increment_sequence_number();
        let out = &mut client.output;
        out.write_message_begin(&TMessageIdentifier::new(
            "call",
            TMessageType::Call,
            sequence,
        ))?;
        out.write_struct_begin(&TStructIdentifier::new("Extension_call_args"))?;
        out.write_field_begin(&TFieldIdentifier::new("registry", TType::String, 1))?;
        out.write_string(registry)?;
        out.write_field_end()?;
        out.write_field_begin(&TFieldIdentifier::new("item", TType::String, 2))?;
        out.write_string(item)?;
        out.write_field_end()?;
        out.write_field_begin(&TFieldIdentifier::new("request", TType::Map, 3))?;
        out.write_map_begin(&TMapIdentifier::new(
            TType::String,
            TType::String,
            i32::try_from(request.len()).unwrap_or(i32::MAX),
        ))?;
        for (key, value) in request {
            out.write_string(key)?;
            out.write_string(value)?;
        }
        out.write_map_end()?;
        out.write_field_end()?;
        out.write_field_stop()?;
        out.write_struct_end()?;
        out.write_message_end()?;
        out.flush()?;

        let input = &mut client.input;
        let message = input.read_message_begin()?;
        verify_expected_sequence_number(sequence, message.sequence_number)?;
        verify_expected_service_call("call", &message.name)?;
        if message.message_type == TMessageType::Exception {
            let remote = thrift::Error::read_application_error_from_in_protocol(input)?;
            input.read_message_end()?;
            return Err(thrift::Error::Application(remote));
        }
        verify_expected_message_type(TMessageType::Reply, message.message_type)?;
        // The result struct: field 0 is the ExtensionResponse.
        let mut status = None;
        input.read_struct_begin()?;
        loop {
            let field = input.read_field_begin()?;
            if field.field_type == TType::Stop {
                break;
            }
            if field.id == Some(0) && field.field_type == TType::Struct {
                status = Some(read_response(input, &mut rows)?);
            } else {
                input.skip(field.field_type)?;
            }
            input.read_field_end()?;
        }
        input.read_struct_end()?;
        input.read_message_end()?;
        let status = status.ok_or_else(|| {
            thrift::Error::Application(ApplicationError::new(
                ApplicationErrorKind::MissingResult,
                "call: the answer has no result",
            ))
        })?;
        Ok(status)
    }
}

/// Reads an `ExtensionResponse`, handing its rows to `rows`; its status. The framing
/// (fields, list header, the status struct) goes through the protocol; the rows are read
/// from its transport directly ([`row_in_buffer`], else [`read_string_into`]), the
/// protocol keeping no state of its own between reads.
fn read_response<R: BufRead>(
    input: &mut TBinaryInputProtocol<R>,
    rows: &mut impl AnswerRows,
) -> thrift::Result<CallStatus> {
    let mut status = CallStatus {
        code: 0,
        message: String::new(),
    };
    let mut owned = OwnedEntries::default();
    let mut spans = Vec::new();
    let mut wanted = true;
    input.read_struct_begin()?;
    loop {
        let field = input.read_field_begin()?;
        match (field.field_type, field.id) {
            (TType::Stop, _) => break,
            (TType::Struct, Some(1)) => {
                let read = ExtensionStatus::read_from_in_protocol(input)?;
                status.code = read.code.unwrap_or(0);
                status.message = read.message.unwrap_or_default();
            }
            (TType::List, Some(2)) => {
                let list = input.read_list_begin()?;
                if list.element_type != TType::Map {
                    return Err(unexpected("the response is not a list of maps"));
                }
                if wanted {
                    rows.announced(usize::try_from(list.size).unwrap_or(0));
                }
                for _ in 0..list.size.max(0) {
                    if wanted {
                        let buffered = input.transport.fill_buf()?;
                        if let Some(length) = row_in_buffer(buffered, &mut spans) {
                            wanted = rows.row(&RowEntries {
                                bytes: buffered,
                                spans: &spans,
                            });
                            input.transport.consume(length);
                            continue;
                        }
                    }
                    let map = input.read_map_begin()?;
                    if map.size > 0
                        && (map.key_type != Some(TType::String)
                            || map.value_type != Some(TType::String))
                    {
                        return Err(unexpected("a row is not a map of strings"));
                    }
                    owned.clear();
                    for _ in 0..map.size.max(0) {
                        if wanted {
                            let start = owned.bytes.len();
                            read_string_into(&mut input.transport, &mut owned.bytes)?;
                            let key_end = owned.bytes.len();
                            read_string_into(&mut input.transport, &mut owned.bytes)?;
                            owned.spans.push(Entry {
                                key: (start, key_end),
                                value: (key_end, owned.bytes.len()),
                            });
                        } else {
                            skip_string(&mut input.transport)?;
                            skip_string(&mut input.transport)?;
                        }
                    }
                    input.read_map_end()?;
                    if wanted {
                        wanted = rows.row(&owned.entries());
                    }
                }
                input.read_list_end()?;
            }
            (other, _) => input.skip(other)?,
        }
        input.read_field_end()?;
    }
    input.read_struct_end()?;
    Ok(status)
}

/// The binary protocol's type code of a string (a map of strings' key and value type).
const STRING_TYPE: u8 = 11;

/// A row (a map of strings) that lies whole at the start of `buffer`: its entries' spans
/// in `spans` and the bytes it takes, or `None` when it does not fit there or is anything
/// but a plain non-empty map of strings (the general path then reads it, and reports
/// what is wrong with it).
fn row_in_buffer(buffer: &[u8], spans: &mut Vec<Entry>) -> Option<usize> {
    let [key_type, value_type, a, b, c, d, ..] = *buffer else {
        return None;
    };
    let size = i32::from_be_bytes([a, b, c, d]);
    if key_type != STRING_TYPE || value_type != STRING_TYPE || size <= 0 {
        return None;
    }
    spans.clear();
    let mut at = 6;
    // A string: its length prefix, then its bytes; its span within `buffer`.
    let string = |at: &mut usize| -> Option<(usize, usize)> {
        let prefix = buffer.get(*at..*at + 4)?;
        let len = i32::from_be_bytes(prefix.try_into().ok()?);
        let len = usize::try_from(len).ok().filter(|&l| l <= STRING_MAX)?;
        let start = *at + 4;
        let end = start.checked_add(len).filter(|&end| end <= buffer.len())?;
        *at = end;
        Some((start, end))
    };
    for _ in 0..size {
        let key = string(&mut at)?;
        let value = string(&mut at)?;
        spans.push(Entry { key, value });
    }
    Some(at)
}

/// A binary-protocol string's length prefix, checked as the protocol checks it.
fn read_string_len(reader: &mut impl BufRead) -> thrift::Result<usize> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix)?;
    let len = i32::from_be_bytes(prefix);
    let len = usize::try_from(len).map_err(|_| {
        thrift::Error::Protocol(ProtocolError::new(
            ProtocolErrorKind::NegativeSize,
            format!("call: a string of negative size {len}"),
        ))
    })?;
    if len > STRING_MAX {
        return Err(thrift::Error::Protocol(ProtocolError::new(
            ProtocolErrorKind::SizeLimit,
            format!("call: a string of {len} bytes exceeds the limit of {STRING_MAX}"),
        )));
    }
    Ok(len)
}

/// Appends a length-prefixed string's bytes to `out`, copied from the reader's buffer.
/// `out` grows only as the bytes arrive, so a lying length prefix costs no more memory
/// than what was really sent.
fn read_string_into(reader: &mut impl BufRead, out: &mut Vec<u8>) -> thrift::Result<()> {
    let mut left = read_string_len(reader)?;
    while left > 0 {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let n = available.len().min(left);
        out.extend_from_slice(&available[..n]);
        reader.consume(n);
        left -= n;
    }
    Ok(())
}

fn skip_string(reader: &mut impl BufRead) -> thrift::Result<()> {
    let mut left = read_string_len(reader)?;
    while left > 0 {
        let available = reader.fill_buf()?.len();
        if available == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let n = available.min(left);
        reader.consume(n);
        left -= n;
    }
    Ok(())
}

fn unexpected(what: &str) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(
        ProtocolErrorKind::InvalidData,
        format!("call: {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::ExtensionResponse;
    use std::io::Cursor;
    use thrift::protocol::TListIdentifier;

    fn row(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What `write` puts on the wire.
    fn encode(write: impl FnOnce(&mut dyn TOutputProtocol)) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut out = TBinaryOutputProtocol::new(&mut bytes, true);
        write(&mut out);
        out.flush().unwrap();
        bytes
    }

    /// `response` as an extension writes it.
    fn response_bytes(response: &ExtensionResponse) -> Vec<u8> {
        encode(|out| response.write_to_out_protocol(out).unwrap())
    }

    /// `bytes` to be read through a buffer of `capacity` bytes (small ones make strings
    /// straddle refills).
    fn input(bytes: Vec<u8>, capacity: usize) -> TBinaryInputProtocol<BufReader<Cursor<Vec<u8>>>> {
        TBinaryInputProtocol::new(
            BufReader::with_capacity(capacity, Cursor::new(bytes)),
            false,
        )
    }

    /// Every row `read_response` hands over, as maps, and the status.
    fn read_all(
        input: &mut TBinaryInputProtocol<impl BufRead>,
    ) -> thrift::Result<(Vec<BTreeMap<String, String>>, CallStatus)> {
        let mut got = Vec::new();
        let status = read_response(input, &mut |entries: &RowEntries<'_>| {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            got.push(entries.iter().map(|(k, v)| (text(k), text(v))).collect());
            true
        })?;
        Ok((got, status))
    }

    /// An `ExtensionResponse` whose field 2 is one row, `entries` written as they are
    /// (a length prefix may lie).
    fn one_row_of(entries: &[(&[u8], &[u8])], length: Option<i32>) -> Vec<u8> {
        let mut bytes = encode(|out| {
            out.write_struct_begin(&TStructIdentifier::new("ExtensionResponse"))
                .unwrap();
            out.write_field_begin(&TFieldIdentifier::new("response", TType::List, 2))
                .unwrap();
            out.write_list_begin(&TListIdentifier::new(TType::Map, 1))
                .unwrap();
            out.write_map_begin(&TMapIdentifier::new(
                TType::String,
                TType::String,
                entries.len() as i32,
            ))
            .unwrap();
        });
        for (key, value) in entries {
            bytes.extend_from_slice(&length.unwrap_or(key.len() as i32).to_be_bytes());
            bytes.extend_from_slice(key);
            bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
            bytes.extend_from_slice(value);
        }
        // Field end, stop, struct end.
        bytes.push(0);
        bytes
    }

    #[test]
    fn rows_are_handed_over_in_order_and_the_status_read() {
        let sent = vec![
            row(&[("a", "1"), ("b", "x")]),
            row(&[]),
            row(&[("b", "a longer value than the buffer"), ("c", "")]),
        ];
        let response =
            ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_owned(), 7), sent.clone());
        // Small buffers make rows straddle refills (read by the general path), large ones
        // hold whole rows (read in place); the middle sizes mix both.
        for capacity in [1, 3, 7, 16, 29, 64, 1 << 16] {
            let (got, status) = read_all(&mut input(response_bytes(&response), capacity)).unwrap();
            assert_eq!(got, sent, "buffer of {capacity}");
            assert_eq!(
                status,
                CallStatus {
                    code: 0,
                    message: "OK".to_owned()
                }
            );
        }
    }

    #[test]
    fn a_stop_reads_the_rest_so_the_stream_stays_in_step() {
        let response = ExtensionResponse::new(
            ExtensionStatus::new(1, "partial".to_owned(), 7),
            vec![row(&[("a", "1")]), row(&[("a", "2")])],
        );
        let mut input = input(response_bytes(&response), 5);
        let mut calls = 0;
        let status = read_response(&mut input, &mut |_: &RowEntries<'_>| {
            calls += 1;
            false
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(status.code, 1);
        assert_eq!(status.message, "partial");
        // Everything was read: nothing is left for the next answer to trip on.
        assert!(input.read_byte().is_err());
    }

    #[test]
    fn a_list_of_something_else_is_an_error() {
        // An ExtensionResponse whose field 2 is a list of strings.
        let bytes = encode(|out| {
            out.write_struct_begin(&TStructIdentifier::new("ExtensionResponse"))
                .unwrap();
            out.write_field_begin(&TFieldIdentifier::new("response", TType::List, 2))
                .unwrap();
            out.write_list_begin(&TListIdentifier::new(TType::String, 1))
                .unwrap();
            out.write_string("row").unwrap();
            out.write_list_end().unwrap();
            out.write_field_end().unwrap();
            out.write_field_stop().unwrap();
            out.write_struct_end().unwrap();
        });
        assert!(read_response(&mut input(bytes, 64), &mut |_: &RowEntries<'_>| true).is_err());
    }

    #[test]
    fn a_truncated_answer_is_an_error_wherever_it_stops() {
        let response = ExtensionResponse::new(
            ExtensionStatus::new(0, "OK".to_owned(), 7),
            vec![row(&[("id", "1"), ("name", "one")]), row(&[("id", "2")])],
        );
        let bytes = response_bytes(&response);
        for capacity in [4, 16, 1 << 16] {
            assert!(read_all(&mut input(bytes.clone(), capacity)).is_ok());
            for cut in 0..bytes.len() {
                let read = read_all(&mut input(bytes[..cut].to_vec(), capacity));
                assert!(
                    read.is_err(),
                    "cut at {cut} of {}, buffer {capacity}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_string_longer_than_the_limit_or_negative_is_an_error_before_any_allocation() {
        // Lengths claimed but never sent: the limit is checked on the prefix alone.
        let oversized = one_row_of(&[(b"k", b"v")], Some(STRING_MAX as i32 + 1));
        match read_all(&mut input(oversized, 64)) {
            Err(thrift::Error::Protocol(e)) => assert_eq!(e.kind, ProtocolErrorKind::SizeLimit),
            other => panic!("not a size error: {other:?}"),
        }
        let negative = one_row_of(&[(b"k", b"v")], Some(-1));
        match read_all(&mut input(negative, 64)) {
            Err(thrift::Error::Protocol(e)) => {
                assert_eq!(e.kind, ProtocolErrorKind::NegativeSize)
            }
            other => panic!("not a size error: {other:?}"),
        }
        // Within the limit but longer than what was sent: the end of the stream, and the
        // buffer holds only what came.
        let mut short = (1i32 << 20).to_be_bytes().to_vec();
        short.extend_from_slice(b"only this");
        let mut buffer = Vec::new();
        let mut reader = BufReader::with_capacity(4, Cursor::new(short));
        assert!(read_string_into(&mut reader, &mut buffer).is_err());
        assert_eq!(buffer, b"only this");
    }

    #[test]
    fn a_row_claiming_more_entries_than_sent_is_an_error_in_any_buffer() {
        let mut bytes = one_row_of(&[(b"k", b"v")], None);
        // The map header's size (after the struct's field header and the list header).
        let size_at = 1 + 2 + 1 + 4 + 2;
        bytes[size_at..size_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        for capacity in [4, 64, 1 << 16] {
            assert!(read_all(&mut input(bytes.clone(), capacity)).is_err());
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_handed_over_as_sent() {
        let bytes = one_row_of(&[(b"k\xff", b"\xfe\x00v")], None);
        let mut got = Vec::new();
        read_response(&mut input(bytes, 64), &mut |entries: &RowEntries<'_>| {
            got.extend(entries.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
            true
        })
        .unwrap();
        assert_eq!(got, vec![(b"k\xff".to_vec(), b"\xfe\x00v".to_vec())]);
    }
}
