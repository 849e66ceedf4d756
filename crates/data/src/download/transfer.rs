//! One HTTP transfer into a `.part` file. When bytes of an earlier attempt are already
//! there the transfer asks for the rest with a `Range` request; a server that ignores the
//! range (200), answers another range than the one asked for (206), or cannot satisfy it
//! (416) is handled by starting over, or, where a 416 names the part's own length as the
//! total, by leaving the complete part to verification. What arrives stays durable in the
//! part even when the transfer breaks off, for a later resume.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;

use ureq::Body;
use ureq::http::Response;

use super::event::FetchEvent;
use super::manifest::ManifestFile;
use crate::error::DataError;

/// The length of the file at `path` in bytes; 0 when it is not there.
pub(super) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Removes the file at `path`; one that is not there is no error.
pub(super) fn remove_if_exists(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DataError::io(path, e)),
    }
}

/// Parses `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// Parses the total of `Content-Range: bytes */TOTAL` (a 416 answer).
fn parse_content_range_unsatisfied(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let total = rest.strip_prefix("*/")?;
    total.trim().parse().ok()
}

/// A server's answer that carries the file's bytes.
struct Delivery {
    /// The answer, its body not yet read.
    response: Response<Body>,
    /// Whether the body continues the part (a 206 from the part's length) rather than
    /// replacing it (a 200).
    append: bool,
    /// The full size as announced by the server, which the transfer must reach; the
    /// manifest size is only a hint for progress display (a mirror serving the same content
    /// recompressed has another size and is still accepted by checksum).
    server_total: Option<u64>,
}

/// What a server's answer to a (possibly ranged) request asks of the transfer.
enum Answer {
    /// Bytes to write.
    Deliver(Delivery),
    /// The part is already complete (a 416 whose total is the part's length); verification
    /// decides.
    Complete,
    /// The part was discarded (an unusable range answer): ask again from byte 0.
    Restart,
}

/// Downloads `url` into `part`, resuming from its current length when possible. On error the
/// bytes received so far stay in `part` (for a later resume) and a reason is returned.
pub(super) fn download_to_part(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    entry: &ManifestFile,
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<(), String> {
    let mut offset = file_len(part);
    for attempt in 0..2 {
        match request(agent, url, part, offset, attempt)? {
            Answer::Deliver(delivery) => {
                return receive(delivery, offset, url, part, entry, progress);
            }
            Answer::Complete => return Ok(()),
            Answer::Restart => offset = 0,
        }
    }
    Err("server kept answering with unusable ranges".to_string())
}

/// Asks for `url` from byte `offset` on (a `Range` request when `offset > 0`) and sorts the
/// answer: a 200, or a 206 starting at `offset`, delivers; a 206 with another range, or a
/// 416 on the first `attempt` whose total is not `offset`, removes the part and restarts;
/// any other status is the mirror's failure.
fn request(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    offset: u64,
    attempt: usize,
) -> Result<Answer, String> {
    let mut request = agent.get(url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = request.call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_range = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match status {
        200 => {
            let server_total = response.body().content_length();
            Ok(Answer::Deliver(Delivery {
                response,
                append: false,
                server_total,
            }))
        }
        206 if offset > 0 => match content_range.as_deref().and_then(parse_content_range) {
            Some((start, total)) if start == offset => Ok(Answer::Deliver(Delivery {
                response,
                append: true,
                server_total: total,
            })),
            _ => {
                // A range we did not ask for: start over without Range.
                remove_if_exists(part).map_err(|e| e.to_string())?;
                Ok(Answer::Restart)
            }
        },
        416 if offset > 0 && attempt == 0 => {
            let total = content_range
                .as_deref()
                .and_then(parse_content_range_unsatisfied);
            if total == Some(offset) {
                // The part is already complete; let verification decide.
                return Ok(Answer::Complete);
            }
            remove_if_exists(part).map_err(|e| e.to_string())?;
            Ok(Answer::Restart)
        }
        _ => {
            let reason = response
                .status()
                .canonical_reason()
                .unwrap_or("unexpected status");
            Err(format!("HTTP {status} {reason}"))
        }
    }
}

/// Writes the body of `delivery` into `part` (after its first `offset` bytes when it
/// appends, else in place of them), reporting [`FetchEvent::Started`] and then
/// [`FetchEvent::Progress`] for every chunk. What arrived is flushed to disk even when the
/// transfer breaks off; the transfer fails unless it reached the size the server announced.
fn receive(
    delivery: Delivery,
    offset: u64,
    url: &str,
    part: &Path,
    entry: &ManifestFile,
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<(), String> {
    let Delivery {
        response,
        append,
        server_total,
    } = delivery;
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let total = server_total.or(entry.size);
    let mut done = if append { offset } else { 0 };
    progress(&FetchEvent::Started {
        file: entry.name.clone(),
        url: url.to_string(),
        resumed_from: done,
        total,
    });
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(format!("cannot write {}: {e}", part.display()));
                }
                done += n as u64;
                progress(&FetchEvent::Progress {
                    file: entry.name.clone(),
                    downloaded: done,
                    total,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("transfer interrupted after {done} bytes: {e}")),
        }
    };
    // Keep what arrived (even on error) durable for a later resume.
    let synced = file.flush().and_then(|()| file.sync_all());
    result?;
    synced.map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    if let Some(total) = server_total
        && done != total
    {
        return Err(format!("received {done} of {total} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range_unsatisfied("bytes */200"), Some(200));
    }
}
