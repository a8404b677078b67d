//! Newline framing of a byte stream into JSON lines.
//!
//! A reactor reads into one shared scratch buffer; complete lines are handled straight from it and only an
//! unfinished tail is copied into the connection's own (usually empty) buffer. So an idle connection holds no
//! read buffer at all, and a line longer than the limit is caught before it is buffered.

use std::ops::ControlFlow;

/// What framing a chunk found.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// All complete lines were handed out; the rest is kept for the next read.
    Ok,
    /// The handler asked to stop (the connection is closing).
    Stopped,
    /// An unfinished line is longer than the limit.
    TooLong,
}

/// Calls `f` for every complete line in `buf` (without `\n` or `\r\n`; blank lines skipped), returning how many
/// bytes were consumed and why it stopped early, if it did. A line longer than `max_line` (its `\r` included)
/// stops framing with [`Framed::TooLong`], however the stream was cut into reads.
pub fn split_lines(
    buf: &mut [u8],
    max_line: usize,
    mut f: impl FnMut(&mut [u8]) -> ControlFlow<()>,
) -> (usize, Option<Framed>) {
    let mut start = 0;
    while let Some(off) = memchr::memchr(b'\n', &buf[start..]) {
        let end = start + off;
        if end - start > max_line {
            return (start, Some(Framed::TooLong));
        }
        let mut line_end = end;
        if line_end > start && buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = &mut buf[start..line_end];
        start = end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if f(line).is_break() {
            return (start, Some(Framed::Stopped));
        }
    }
    (start, None)
}

/// Frames `data` (just read) against the connection's unfinished line `partial`, calling `f` per line.
/// On return `partial` holds the new unfinished tail (bounded by `max_line`).
pub fn feed(
    partial: &mut Vec<u8>,
    data: &mut [u8],
    max_line: usize,
    f: impl FnMut(&mut [u8]) -> ControlFlow<()>,
) -> Framed {
    if partial.is_empty() {
        let (used, stop) = split_lines(data, max_line, f);
        if let Some(stop) = stop {
            return stop;
        }
        let tail = &data[used..];
        if tail.len() > max_line {
            return Framed::TooLong;
        }
        partial.extend_from_slice(tail);
        return Framed::Ok;
    }
    // Finish the buffered line first. Only the bytes up to the first newline join it.
    let first_nl = memchr::memchr(b'\n', data);
    let take = first_nl.map_or(data.len(), |i| i + 1);
    // With its newline a complete line may take one byte more than the limit.
    let limit = max_line + usize::from(first_nl.is_some());
    if partial.len() + take > limit {
        return Framed::TooLong;
    }
    partial.extend_from_slice(&data[..take]);
    if first_nl.is_none() {
        return Framed::Ok;
    }
    let mut f = f;
    let (_, stop) = split_lines(partial, max_line, &mut f);
    partial.clear();
    if partial.capacity() > 4096 {
        *partial = Vec::new();
    }
    if let Some(stop) = stop {
        return stop;
    }
    feed(partial, &mut data[take..], max_line, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, Framed) {
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        let mut last = Framed::Ok;
        for c in chunks {
            let mut data = c.to_vec();
            last = feed(&mut partial, &mut data, max, |l| {
                lines.push(l.to_vec());
                ControlFlow::Continue(())
            });
            if last != Framed::Ok {
                break;
            }
        }
        (lines, last)
    }

    #[test]
    fn any_chunking_gives_the_same_lines() {
        let stream = b"{\"a\":1}\n\r\n{\"b\":2}\r\n{\"c\":3}\n";
        let expected = vec![
            b"{\"a\":1}".to_vec(),
            b"{\"b\":2}".to_vec(),
            b"{\"c\":3}".to_vec(),
        ];
        for split in 0..stream.len() {
            for split2 in split..stream.len() {
                let (lines, r) = collect(
                    &[&stream[..split], &stream[split..split2], &stream[split2..]],
                    64,
                );
                assert_eq!(r, Framed::Ok);
                assert_eq!(lines, expected, "split at {split},{split2}");
            }
        }
    }

    #[test]
    fn over_long_lines_are_refused_whether_split_or_not() {
        let long = vec![b'x'; 100];
        assert_eq!(collect(&[&long], 64).1, Framed::TooLong);
        assert_eq!(collect(&[&long[..50], &long[50..]], 64).1, Framed::TooLong);
        let mut with_nl = long.clone();
        with_nl.push(b'\n');
        assert_eq!(
            collect(&[&with_nl[..10], &with_nl[10..]], 64).1,
            Framed::TooLong
        );
        // Exactly at the limit is fine.
        let mut ok = vec![b'y'; 64];
        ok.push(b'\n');
        let (lines, r) = collect(&[&ok[..30], &ok[30..]], 64);
        assert_eq!(r, Framed::Ok);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn a_long_complete_line_within_one_read_is_refused_too() {
        assert_eq!(collect(&[b"{\"id\":1}\nxxxxx\n"], 4).1, Framed::TooLong);
        assert_eq!(collect(&[b"      \n"], 4).1, Framed::TooLong);
        assert_eq!(
            collect(&[b"xxxx\r\n"], 4).1,
            Framed::TooLong,
            "the \\r counts"
        );
        assert_eq!(collect(&[b"xxx\r\n"], 4).1, Framed::Ok);
    }

    #[test]
    fn a_stop_ends_framing() {
        let mut partial = Vec::new();
        let mut data = b"a\nb\nc\n".to_vec();
        let mut n = 0;
        let r = feed(&mut partial, &mut data, 64, |_| {
            n += 1;
            if n == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(r, Framed::Stopped);
        assert_eq!(n, 2);
    }
}
