//! The pretty JSON every document is written as (two-space indent, key order kept, a final
//! newline), and the same bytes made on several threads for a large object of named children.
//!
//! [`Pretty`] is serde_json's pretty printer with an indent of two spaces that can start at any
//! depth: a value rendered at depth `d` gives the bytes it has as a member of an object nested
//! `d` deep. So the members of a large object (the products of a stream) can be rendered apart,
//! each part into its own buffer on its own thread, and joined: [`ObjectWriter`] writes an
//! object member by member with the same framing the serializer gives a map.

use std::io;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

const INDENT: &[u8] = b"  ";

/// serde_json's `PrettyFormatter` with a two-space indent, starting at a given depth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    pub(crate) fn at(depth: usize) -> Pretty {
        Pretty {
            depth,
            has_value: false,
        }
    }

    fn indent<W: ?Sized + io::Write>(&self, writer: &mut W) -> io::Result<()> {
        // A line's indent in one write, not one per level.
        const SPACES: &[u8] = &[b' '; 64];
        let mut left = self.depth * INDENT.len();
        while left > 0 {
            let n = left.min(SPACES.len());
            writer.write_all(&SPACES[..n])?;
            left -= n;
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            writer.write_all(b"\n")?;
            self.indent(writer)?;
        }
        writer.write_all(bracket)
    }

    fn next_line<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        writer.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(writer)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.next_line(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.next_line(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Appends `value` as pretty JSON rendered at `depth`.
pub(crate) fn write_pretty<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    depth: usize,
) -> serde_json::Result<()> {
    value.serialize(&mut Serializer::with_formatter(out, Pretty::at(depth)))
}

/// Serialises a document as pretty JSON (two-space indent, key order kept) plus a newline.
pub fn to_vec_pretty<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // Serialising our own in-memory maps cannot fail (string keys only).
    if write_pretty(&mut out, value, 0).is_err() {
        out.clear();
    }
    out.push(b'\n');
    out
}

/// Writes an object member by member, with the framing serde_json gives a map under
/// [`Pretty`]. Keys are written as given (the caller converts kept keys as the model's
/// serialisers do).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectWriter {
    fmt: Pretty,
    first: bool,
}

impl ObjectWriter {
    /// Opens an object that is a value at `depth`.
    pub(crate) fn begin(out: &mut Vec<u8>, depth: usize) -> serde_json::Result<ObjectWriter> {
        let mut fmt = Pretty::at(depth);
        fmt.begin_object(out).map_err(serde_json::Error::io)?;
        Ok(ObjectWriter { fmt, first: true })
    }

    /// The same object carried on in another buffer after `members` members (what one part
    /// of it rendered apart starts with).
    fn after(mut self, members: usize) -> ObjectWriter {
        if members > 0 {
            self.first = false;
            self.fmt.has_value = true;
        }
        self
    }

    /// Writes the next member's key, up to where its value starts.
    pub(crate) fn key(&mut self, out: &mut Vec<u8>, key: &str) -> serde_json::Result<()> {
        self.fmt
            .begin_object_key(out, self.first)
            .map_err(serde_json::Error::io)?;
        self.first = false;
        key.serialize(&mut Serializer::with_formatter(&mut *out, self.fmt))?;
        self.fmt
            .begin_object_value(out)
            .map_err(serde_json::Error::io)?;
        // For the closing bracket, the member is there from now (its value is the caller's).
        self.fmt
            .end_object_value(out)
            .map_err(serde_json::Error::io)?;
        Ok(())
    }

    /// Writes the next member's key and opens the object that is its value.
    pub(crate) fn object_member(
        &mut self,
        out: &mut Vec<u8>,
        key: &str,
    ) -> serde_json::Result<ObjectWriter> {
        self.key(out, key)?;
        ObjectWriter::begin(out, self.fmt.depth)
    }

    /// Writes the next member.
    pub(crate) fn member<V: Serialize + ?Sized>(
        &mut self,
        out: &mut Vec<u8>,
        key: &str,
        value: &V,
    ) -> serde_json::Result<()> {
        self.key(out, key)?;
        write_pretty(out, value, self.fmt.depth)
    }

    /// Closes the object.
    pub(crate) fn end(mut self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        self.fmt.end_object(out).map_err(serde_json::Error::io)?;
        Ok(())
    }

    /// Writes the members of `children` with `write`, in the runs `bounds` cuts them into
    /// (from 0 to their number), each but the first on a thread of its own into a buffer of its
    /// expected size (`room`: the bytes a child is expected to take), the first here straight
    /// into `out`; the buffers are appended in order. A run whose thread cannot be started is
    /// rendered here.
    pub(crate) fn members_parallel<C, W>(
        &mut self,
        out: &mut Vec<u8>,
        children: &IndexMap<String, C>,
        bounds: &[usize],
        room: impl Fn(&C) -> usize,
        write: W,
    ) -> serde_json::Result<()>
    where
        C: Sync,
        W: Fn(&mut ObjectWriter, &mut Vec<u8>, &str, &C) -> serde_json::Result<()> + Sync,
    {
        let slice = children.as_slice();
        let render = |w: &mut ObjectWriter, buf: &mut Vec<u8>, from: usize, to: usize| {
            slice[from..to]
                .iter()
                .try_for_each(|(k, c)| write(w, buf, k, c))
        };
        let start = *self;
        std::thread::scope(|scope| {
            let mut parts = Vec::new();
            for part in bounds.windows(2).skip(1) {
                let (from, to) = (part[0], part[1]);
                let render = &render;
                let size = slice[from..to].values().map(&room).sum::<usize>();
                let job = move || {
                    let mut buf = Vec::with_capacity(size);
                    render(&mut start.after(from), &mut buf, from, to).map(|()| buf)
                };
                let spawned = std::thread::Builder::new()
                    .name("pretty-json".into())
                    .spawn_scoped(scope, job);
                parts.push((from, to, spawned.ok()));
            }
            render(self, out, 0, bounds.get(1).copied().unwrap_or(slice.len()))?;
            for (from, to, handle) in parts {
                match handle.map(|h| h.join()) {
                    Some(Ok(buf)) => out.extend_from_slice(&buf?),
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => render(self, out, from, to)?,
                }
            }
            serde_json::Result::Ok(())
        })?;
        *self = start.after(slice.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_matches_serde_json_at_depth_zero() {
        let value = serde_json::json!({
            "a": [], "b": {}, "c": [1, {"d": [true, null, "x\ny\"z"]}],
            "e": {"f": {"g": {"h": [[], [{}], 1.5]}}}, "\u{1}": -3
        });
        let ours = to_vec_pretty(&value);
        let mut theirs = serde_json::to_vec_pretty(&value).unwrap();
        theirs.push(b'\n');
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[test]
    fn members_written_apart_join_into_the_whole() {
        let mut children = IndexMap::new();
        for i in 0..7 {
            children.insert(
                format!("k{i}\"\\"),
                serde_json::json!({"n": i, "list": [i, {"deep": []}], "empty": {}}),
            );
        }
        let whole = serde_json::json!({"before": 1, "kids": children, "after": [2]});
        let expected = to_vec_pretty(&whole);
        for threads in 1..=9 {
            let mut out = Vec::new();
            let mut top = ObjectWriter::begin(&mut out, 0).unwrap();
            top.member(&mut out, "before", &1).unwrap();
            let mut kids = top.object_member(&mut out, "kids").unwrap();
            let bounds = crate::products::split_by_weight(&[1; 7], threads);
            kids.members_parallel(
                &mut out,
                &children,
                &bounds,
                |_| 16,
                |w, out, k, v| w.member(out, k, v),
            )
            .unwrap();
            kids.end(&mut out).unwrap();
            top.member(&mut out, "after", &[2]).unwrap();
            top.end(&mut out).unwrap();
            out.push(b'\n');
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(expected.clone()).unwrap(),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn empty_children_make_an_empty_object() {
        let mut out = Vec::new();
        let mut w = ObjectWriter::begin(&mut out, 3).unwrap();
        let none: IndexMap<String, u8> = IndexMap::new();
        w.members_parallel(
            &mut out,
            &none,
            &[0, 0],
            |_| 1,
            |w, out, k, v| w.member(out, k, v),
        )
        .unwrap();
        w.end(&mut out).unwrap();
        assert_eq!(out, b"{}");
    }
}
