//! Declared-length guard: a header-only pre-scan of a DICOM file that refuses it when an
//! element, item or fragment declares more bytes than the file holds after it.
//!
//! dicom-parser 0.10.1 reserves and zero-fills a value's declared length before reading it
//! (`read_value_ob` and friends), so a few-KB file claiming a 4 GB value costs 4 GB of memory.
//! This scan walks the element headers the way `DataSetReader` does (file meta group in
//! explicit VR little endian, then the data set in the transfer syntax of (0002,0010);
//! sequences and items of defined or undefined length; encapsulated pixel data fragments) and
//! seeks over every value, so only headers are read. Deflated data sets are inflated as a
//! stream and measured by skipping. Where the parser would stop (end of file, a malformed
//! header, an unknown delimiter) the scan stops too and leaves the error, if any, to
//! dicom-object: the only outcome of this module is [`StudyError::DeclaredLengthExceedsFile`].

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use dicom_core::VR;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::Tag;
use flate2::read::DeflateDecoder;

use crate::study::{Result, StudyError};

/// How much of the file the caller is about to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// Up to (not including) the first top-level element at or after Pixel Data, as read by
    /// `OpenFileOptions::read_until(PIXEL_DATA)`.
    UntilPixelData,
    /// The whole file.
    Whole,
}

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = u32::MAX;
/// Explicit VRs with a 16-bit length (PS3.5 7.1.2); all others have 2 reserved bytes and 32.
const SHORT_LENGTH_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
];
/// Deflate-based transfer syntaxes (the data set after the meta group is a raw deflate stream).
const DEFLATED: [&str; 3] = [
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.95",
    "1.2.840.10008.1.2.4.205",
];

/// Refuses `path` if a declared length inside `extent` runs past the end of the file. Read
/// errors and malformed headers are not reported here: dicom-object reports them when it
/// reads the same bytes.
pub(crate) fn check(path: &Path, extent: Extent) -> Result<()> {
    match scan(path, extent) {
        Err(Stop::Overrun {
            tag,
            offset,
            declared,
            available,
        }) => Err(StudyError::DeclaredLengthExceedsFile {
            path: path.to_path_buf(),
            tag,
            offset,
            declared,
            available,
        }),
        Ok(()) | Err(Stop::Done) => Ok(()),
    }
}

/// Why the scan ended early.
enum Stop {
    /// A declared length runs past the end of the input.
    Overrun {
        tag: Tag,
        offset: u64,
        declared: u64,
        available: u64,
    },
    /// End of input, a read error or a header the parser would refuse: nothing more to check.
    Done,
}

impl From<io::Error> for Stop {
    fn from(_: io::Error) -> Self {
        Stop::Done
    }
}

type Flow<T = ()> = std::result::Result<T, Stop>;

fn scan(path: &Path, extent: Extent) -> Flow {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut input = Input::new(BufReader::new(file), Some(len));
    let mut preamble = [0u8; 132];
    input.read_exact(&mut preamble)?;
    if preamble.get(128..) != Some(b"DICM".as_slice()) {
        return Err(Stop::Done);
    }
    let ts = input.meta_group()?;
    let ts = ts.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
    if DEFLATED.contains(&ts) {
        // Offsets count in the inflated data set.
        return Input::new(DeflateDecoder::new(input.reader), None).data_set(extent);
    }
    // Every other syntax dicom-rs knows is explicit VR little endian; unknown ones fail in
    // dicom-object right after the meta group.
    input.explicit = ts != "1.2.840.10008.1.2";
    input.big_endian = ts == "1.2.840.10008.1.2.2";
    input.data_set(extent)
}

/// A reader that can skip bytes: seeking in a file, reading and discarding in a stream.
trait Skip: Read {
    /// Skips up to `n` bytes; returns how many were skipped (fewer only at the end).
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

impl Skip for BufReader<File> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        // Callers check `n` against the file length first.
        self.seek_relative(i64::try_from(n).map_err(io::Error::other)?)?;
        Ok(n)
    }
}

impl<R: Read> Skip for DeflateDecoder<R> {
    /// A corrupt stream ends the data set where it stops inflating: the parser has already
    /// allocated for the value by then, so that counts as the end of the data.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut buf = [0u8; 8192];
        let mut skipped = 0;
        loop {
            match self.by_ref().take(n - skipped).read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => return Ok(skipped),
                Ok(k) => skipped += k as u64,
            }
        }
    }
}

/// An open container: a sequence or an item, with its end (a parser position) when its
/// length is defined.
struct Container {
    item: bool,
    pixel_data: bool,
    /// Encapsulated pixel data before its first item (the basic offset table).
    offset_table_next: bool,
    end: Option<u64>,
}

struct Input<R> {
    reader: R,
    /// Offset of the next byte, counted from the start of the input.
    pos: u64,
    /// dicom-parser's `position`, which sequence and item ends are measured against: it
    /// advances by a value's declared length even where fewer bytes were read (see
    /// [`value_unit`]).
    logical: u64,
    /// Length of the input when known (a plain file); `None` for an inflated stream.
    len: Option<u64>,
    explicit: bool,
    big_endian: bool,
}

impl<R: Skip> Input<R> {
    /// Explicit VR little endian (the meta group's encoding) until told otherwise.
    fn new(reader: R, len: Option<u64>) -> Self {
        Self {
            reader,
            pos: 0,
            logical: 0,
            len,
            explicit: true,
            big_endian: false,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Flow {
        self.reader.read_exact(buf)?;
        self.pos += buf.len() as u64;
        self.logical += buf.len() as u64;
        Ok(())
    }

    fn u16(&mut self) -> Flow<u16> {
        let mut b = [0u8; 2];
        self.read_exact(&mut b)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Flow<u32> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// Reads an element, item or delimiter header: (tag, VR, length, offset of the header).
    /// Implicit VR takes the VR from the standard dictionary, as the parser does; in explicit
    /// VR, item and delimiter tags (group FFFE) have no VR field.
    fn header(&mut self) -> Flow<(Tag, VR, u32, u64)> {
        let at = self.pos;
        let tag = Tag(self.u16()?, self.u16()?);
        if !self.explicit {
            let vr = StandardDataDictionary
                .by_tag(tag)
                .map_or(VR::UN, |e| e.vr().relaxed());
            return Ok((tag, vr, self.u32()?, at));
        }
        if tag.0 == 0xFFFE {
            return Ok((tag, VR::UN, self.u32()?, at));
        }
        let mut code = [0u8; 2];
        self.read_exact(&mut code)?;
        let vr = VR::from_binary(code).unwrap_or(VR::UN);
        let short = SHORT_LENGTH_VRS.contains(&&code);
        let len = if short {
            u32::from(self.u16()?)
        } else {
            self.u16()?; // reserved
            self.u32()?
        };
        Ok((tag, vr, len, at))
    }

    /// Checks that the bytes the parser reads for a value of `declared` bytes in units of
    /// `unit` follow the header at `at`; with `skip`, moves past them.
    fn value(&mut self, tag: Tag, at: u64, declared: u32, unit: u32, skip: bool) -> Flow {
        let consumed = u64::from(declared - declared % unit.max(1));
        let overrun = |available| Stop::Overrun {
            tag,
            offset: at,
            declared: u64::from(declared),
            available,
        };
        match self.len {
            Some(len) => {
                let available = len.saturating_sub(self.pos);
                if consumed > available {
                    return Err(overrun(available));
                }
                if skip {
                    self.pos += self.reader.skip(consumed)?;
                }
            }
            // A stream's length is unknown: containers are checked through their contents.
            None if skip => {
                let skipped = self.reader.skip(consumed)?;
                self.pos += skipped;
                if skipped < consumed {
                    return Err(overrun(skipped));
                }
            }
            None => {}
        }
        if skip {
            self.logical += u64::from(declared);
        }
        Ok(())
    }

    /// Walks the file meta group (explicit VR little endian, as long as (0002,0000) says) and
    /// returns the transfer syntax UID, empty when absent.
    fn meta_group(&mut self) -> Flow<String> {
        let (tag, _, len, at) = self.header()?;
        if tag != Tag(0x0002, 0x0000) || len != 4 {
            return Err(Stop::Done);
        }
        self.value(tag, at, len, 1, false)?;
        let group_length = self.u32()?;
        let mut ts = String::new();
        let mut read = 0u32;
        while read < group_length {
            let (tag, _, len, at) = self.header()?;
            if len == UNDEFINED {
                return Err(Stop::Done);
            }
            let header_len = u32::try_from(self.pos - at).unwrap_or(u32::MAX);
            if tag == Tag(0x0002, 0x0010) && len <= 64 {
                self.value(tag, at, len, 1, false)?;
                let mut buf = [0u8; 64];
                let uid = buf.get_mut(..len as usize).ok_or(Stop::Done)?;
                self.read_exact(uid)?;
                ts = String::from_utf8_lossy(uid).into_owned();
            } else {
                self.value(tag, at, len, 1, true)?;
            }
            read = read.saturating_add(header_len).saturating_add(len);
        }
        Ok(ts)
    }
}

impl<R: Skip> Input<R> {
    /// Walks the main data set like dicom-parser's `DataSetReader`, checking every length.
    fn data_set(mut self, extent: Extent) -> Flow {
        let mut open: Vec<Container> = Vec::new();
        let mut in_sequence = false;
        loop {
            // Containers of defined length end where their length says (the parser fails
            // when it has read past that point).
            while let Some(end) = open.last().and_then(|c| c.end) {
                if end > self.logical {
                    break;
                }
                if end < self.logical {
                    return Err(Stop::Done);
                }
                in_sequence = open.pop().is_some_and(|c| c.item);
            }
            if in_sequence {
                let (tag, _, len, at) = self.header()?;
                match tag {
                    ITEM => {
                        let top = open.last_mut().ok_or(Stop::Done)?;
                        if top.pixel_data {
                            if len == UNDEFINED {
                                return Err(Stop::Done);
                            }
                            if std::mem::take(&mut top.offset_table_next) && len > 0 {
                                // Read as 32-bit offsets; a ragged length derails the parser,
                                // which fails after one more read of at most `len` bytes.
                                self.value(tag, at, len, 4, true)?;
                                if len % 4 != 0 {
                                    return Err(Stop::Done);
                                }
                            } else {
                                self.value(tag, at, len, 1, true)?;
                            }
                        } else {
                            self.container(&mut open, tag, at, len, true)?;
                            in_sequence = false;
                        }
                    }
                    ITEM_END => {
                        open.pop();
                    }
                    SEQUENCE_END => {
                        open.pop();
                        in_sequence = false;
                    }
                    _ => return Err(Stop::Done),
                }
                continue;
            }
            let (tag, vr, len, at) = self.header()?;
            if tag == ITEM_END {
                // Closes the open item; ignored outside a sequence.
                in_sequence = open.pop().is_some();
            } else if extent == Extent::UntilPixelData && open.is_empty() && tag >= PIXEL_DATA {
                return Ok(());
            } else if vr == VR::SQ {
                self.container(&mut open, tag, at, len, false)?;
                in_sequence = true;
            } else if len == UNDEFINED {
                // Encapsulated pixel data, or any other element of undefined length, which
                // the parser reads as a sequence.
                open.push(Container {
                    item: false,
                    pixel_data: tag == PIXEL_DATA,
                    offset_table_next: tag == PIXEL_DATA,
                    end: None,
                });
                in_sequence = true;
            } else {
                self.value(tag, at, len, value_unit(vr), true)?;
            }
        }
    }

    /// Opens a sequence or a data set item, checking a defined length against the input.
    fn container(
        &mut self,
        open: &mut Vec<Container>,
        tag: Tag,
        at: u64,
        len: u32,
        item: bool,
    ) -> Flow {
        let end = if len == UNDEFINED {
            None
        } else {
            self.value(tag, at, len, 1, false)?;
            Some(self.logical + u64::from(len))
        };
        open.push(Container {
            item,
            pixel_data: false,
            offset_table_next: false,
            end,
        });
        Ok(())
    }
}

/// Bytes per number of a binary VR: dicom-parser reads `length / unit` numbers, so it reads
/// `length` rounded down to a multiple of `unit`. Text and byte values are read whole.
fn value_unit(vr: VR) -> u32 {
    match vr {
        VR::US | VR::OW | VR::SS => 2,
        VR::AT | VR::FL | VR::OF | VR::UL | VR::OL | VR::SL => 4,
        VR::FD | VR::OD | VR::SV | VR::OV | VR::UV => 8,
        _ => 1,
    }
}
