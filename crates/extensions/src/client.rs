//! A client of an extension manager's or an extension's socket.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TMapIdentifier,
    TMessageIdentifier, TMessageType, TSerializable, TStructIdentifier, TType,
    verify_expected_message_type, verify_expected_sequence_number, verify_expected_service_call,
};
use thrift::transport::{
    ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, WriteHalf,
};
use thrift::{
    ApplicationError, ApplicationErrorKind, ProtocolError, ProtocolErrorKind, TThriftClient,
};

use crate::generated::{ExtensionManagerSyncClient, ExtensionStatus};

type Input = TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<UnixStream>>>;
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
    inner: ExtensionManagerSyncClient<Input, Output>,
}

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
        let input = TBinaryInputProtocol::new(TBufferedReadTransport::new(read), false);
        let output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true);
        Ok(Client {
            inner: ExtensionManagerSyncClient::new(input, output),
        })
    }

    /// The generated client, with every call of both services
    /// (`TExtensionSyncClient`, `TExtensionManagerSyncClient`).
    pub fn calls(&mut self) -> &mut ExtensionManagerSyncClient<Input, Output> {
        &mut self.inner
    }
}

/// The status of a `call` whose rows went to a callback ([`Client::call_rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    pub code: i32,
    pub message: String,
}

impl Client {
    /// `call(registry, item, request)`, handing each row of the answer to `on_row` as it
    /// is read (its entries in the order sent; `on_row` takes what it wants out of the
    /// buffer, which is reused for the next row) instead of building the whole answer.
    /// A table of many rows then costs one buffer, not a map per row. Once `on_row`
    /// returns false the rest is read and dropped, so the connection stays in step.
    pub fn call_rows(
        &mut self,
        registry: &str,
        item: &str,
        request: &BTreeMap<String, String>,
        mut on_row: impl FnMut(&mut Vec<(String, String)>) -> bool,
    ) -> thrift::Result<CallStatus> {
        let client = &mut self.inner;
        client.increment_sequence_number();
        let sequence = client.sequence_number();
        let out = client.o_prot_mut();
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

        let input = client.i_prot_mut();
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
                status = Some(read_response(input, &mut on_row)?);
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

/// Reads an `ExtensionResponse`, handing its rows to `on_row`; its status.
fn read_response(
    input: &mut dyn TInputProtocol,
    on_row: &mut impl FnMut(&mut Vec<(String, String)>) -> bool,
) -> thrift::Result<CallStatus> {
    let mut status = CallStatus {
        code: 0,
        message: String::new(),
    };
    let mut entries = Vec::new();
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
                for _ in 0..list.size.max(0) {
                    let map = input.read_map_begin()?;
                    if map.size > 0
                        && (map.key_type != Some(TType::String)
                            || map.value_type != Some(TType::String))
                    {
                        return Err(unexpected("a row is not a map of strings"));
                    }
                    entries.clear();
                    for _ in 0..map.size.max(0) {
                        let key = input.read_string()?;
                        let value = input.read_string()?;
                        if wanted {
                            entries.push((key, value));
                        }
                    }
                    input.read_map_end()?;
                    if wanted {
                        wanted = on_row(&mut entries);
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
    use thrift::protocol::TOutputProtocol;
    use thrift::transport::TBufferChannel;

    fn row(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `response` as an extension writes it, ready to be read.
    fn input(response: &ExtensionResponse) -> TBinaryInputProtocol<TBufferChannel> {
        let mut channel = TBufferChannel::with_capacity(0, 1 << 16);
        let mut out = TBinaryOutputProtocol::new(&mut channel, true);
        response.write_to_out_protocol(&mut out).unwrap();
        out.flush().unwrap();
        let bytes = channel.write_bytes();
        let mut channel = TBufferChannel::with_capacity(bytes.len() + 1, 0);
        channel.set_readable_bytes(&bytes);
        TBinaryInputProtocol::new(channel, false)
    }

    #[test]
    fn rows_are_handed_over_in_order_and_the_status_read() {
        let sent = vec![row(&[("a", "1"), ("b", "x")]), row(&[]), row(&[("b", "y")])];
        let response =
            ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_owned(), 7), sent.clone());
        let mut got = Vec::new();
        let status = read_response(&mut input(&response), &mut |entries| {
            got.push(entries.drain(..).collect::<BTreeMap<_, _>>());
            true
        })
        .unwrap();
        assert_eq!(got, sent);
        assert_eq!(
            status,
            CallStatus {
                code: 0,
                message: "OK".to_owned()
            }
        );
    }

    #[test]
    fn a_stop_reads_the_rest_so_the_stream_stays_in_step() {
        let response = ExtensionResponse::new(
            ExtensionStatus::new(1, "partial".to_owned(), 7),
            vec![row(&[("a", "1")]), row(&[("a", "2")])],
        );
        let mut input = input(&response);
        let mut calls = 0;
        let status = read_response(&mut input, &mut |_| {
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
        let mut channel = TBufferChannel::with_capacity(0, 1024);
        let mut out = TBinaryOutputProtocol::new(&mut channel, true);
        out.write_struct_begin(&TStructIdentifier::new("ExtensionResponse"))
            .unwrap();
        out.write_field_begin(&TFieldIdentifier::new("response", TType::List, 2))
            .unwrap();
        out.write_list_begin(&thrift::protocol::TListIdentifier::new(TType::String, 1))
            .unwrap();
        out.write_string("row").unwrap();
        out.write_list_end().unwrap();
        out.write_field_end().unwrap();
        out.write_field_stop().unwrap();
        out.write_struct_end().unwrap();
        out.flush().unwrap();
        let bytes = channel.write_bytes();
        let mut channel = TBufferChannel::with_capacity(bytes.len(), 0);
        channel.set_readable_bytes(&bytes);
        let mut input = TBinaryInputProtocol::new(channel, false);
        assert!(read_response(&mut input, &mut |_| true).is_err());
    }
}
