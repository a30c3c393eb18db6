//! Encoding of one journal record's payload: a `u32` JSON length, a JSON list of ops, then the
//! deflated tile blobs the ops point at (uniform tiles carry their value in the JSON instead).
//!
//! Decoding never trusts the input: offsets are range-checked, blobs inflate to at most one
//! tile, and image sizes are validated; a bad record is an `Err` that the journal reports.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use super::document::{ItemId, LabelClass, MaskProvenance, ReviewState, SetOp};
use super::mask::{ImageSize, TILE_SIZE, TileData};

pub(crate) fn read_u32(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_le_bytes)
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpRecord {
    AddItem {
        key: String,
        width: u32,
        height: u32,
    },
    Tiles {
        item: u32,
        class: u8,
        tiles: Vec<TileRecord>,
    },
    State {
        item: u32,
        state: ReviewState,
    },
    Hue {
        item: u32,
        hue: Option<f32>,
    },
    Provenance {
        item: u32,
        class: u8,
        value: Option<MaskProvenance>,
    },
    Class {
        value: u8,
        class: Option<LabelClass>,
    },
}

/// A tile: either `uniform`, or `len` deflated bytes at `offset` in the blob section.
#[derive(serde::Serialize, serde::Deserialize)]
struct TileRecord {
    index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uniform: Option<u8>,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    len: usize,
}

pub(crate) fn encode_record(ops: &[SetOp]) -> Vec<u8> {
    let mut blobs = Vec::new();
    let records: Vec<OpRecord> = ops.iter().map(|op| op_record(op, &mut blobs)).collect();
    // Serialising these plain structs cannot fail; an empty list would still be a valid record.
    let json = serde_json::to_vec(&records).unwrap_or_else(|_| b"[]".to_vec());
    let mut payload = Vec::with_capacity(4 + json.len() + blobs.len());
    payload.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    payload.extend_from_slice(&json);
    payload.extend_from_slice(&blobs);
    let mut record = Vec::with_capacity(8 + payload.len());
    record.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

fn op_record(op: &SetOp, blobs: &mut Vec<u8>) -> OpRecord {
    match op {
        SetOp::AddItem { key, size } => OpRecord::AddItem {
            key: key.clone(),
            width: size.width,
            height: size.height,
        },
        SetOp::Tiles { item, class, tiles } => OpRecord::Tiles {
            item: item.0,
            class: *class,
            tiles: tiles
                .iter()
                .map(|(index, data)| tile_record(*index, data, blobs))
                .collect(),
        },
        SetOp::State { item, state } => OpRecord::State {
            item: item.0,
            state: *state,
        },
        SetOp::Hue { item, hue } => OpRecord::Hue {
            item: item.0,
            hue: *hue,
        },
        SetOp::Provenance { item, class, value } => OpRecord::Provenance {
            item: item.0,
            class: *class,
            value: value.clone(),
        },
        SetOp::Class { value, class } => OpRecord::Class {
            value: *value,
            class: class.clone(),
        },
    }
}

fn tile_record(index: u32, data: &TileData, blobs: &mut Vec<u8>) -> TileRecord {
    match data {
        TileData::Uniform(v) => TileRecord {
            index,
            uniform: Some(*v),
            offset: 0,
            len: 0,
        },
        TileData::Raw(bytes) => {
            let offset = blobs.len();
            let mut encoder = DeflateEncoder::new(std::mem::take(blobs), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(bytes);
            *blobs = encoder.finish().unwrap_or_default();
            TileRecord {
                index,
                uniform: None,
                offset,
                len: blobs.len() - offset,
            }
        }
    }
}

pub(crate) fn decode_payload(payload: &[u8]) -> std::result::Result<Vec<SetOp>, String> {
    let json_len = payload.get(..4).map(read_u32).ok_or("payload cut short")? as usize;
    let json = payload
        .get(4..4 + json_len)
        .ok_or("payload shorter than its JSON")?;
    let blobs = payload.get(4 + json_len..).unwrap_or_default();
    let records: Vec<OpRecord> =
        serde_json::from_slice(json).map_err(|e| format!("undecodable record: {e}"))?;
    records.into_iter().map(|r| set_op(r, blobs)).collect()
}

fn set_op(record: OpRecord, blobs: &[u8]) -> std::result::Result<SetOp, String> {
    Ok(match record {
        OpRecord::AddItem { key, width, height } => SetOp::AddItem {
            key,
            size: ImageSize::new(width, height).ok_or("record adds an item of invalid size")?,
        },
        OpRecord::Tiles { item, class, tiles } => SetOp::Tiles {
            item: ItemId(item),
            class,
            tiles: tiles
                .into_iter()
                .map(|t| tile_data(&t, blobs).map(|d| (t.index, d)))
                .collect::<std::result::Result<_, _>>()?,
        },
        OpRecord::State { item, state } => SetOp::State {
            item: ItemId(item),
            state,
        },
        OpRecord::Hue { item, hue } => SetOp::Hue {
            item: ItemId(item),
            hue: hue.filter(|h| h.is_finite()),
        },
        OpRecord::Provenance { item, class, value } => SetOp::Provenance {
            item: ItemId(item),
            class,
            value,
        },
        OpRecord::Class { value, class } => SetOp::Class { value, class },
    })
}

fn tile_data(tile: &TileRecord, blobs: &[u8]) -> std::result::Result<TileData, String> {
    if let Some(v) = tile.uniform {
        return Ok(TileData::Uniform(v));
    }
    let blob = tile
        .offset
        .checked_add(tile.len)
        .and_then(|end| blobs.get(tile.offset..end))
        .ok_or("tile blob out of range")?;
    let max = u64::from(TILE_SIZE * TILE_SIZE);
    let mut bytes = Vec::new();
    DeflateDecoder::new(blob)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("tile blob does not inflate: {e}"))?;
    if bytes.len() as u64 > max {
        return Err("tile blob inflates past a tile".into());
    }
    Ok(TileData::Raw(bytes.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(record: &[u8]) -> &[u8] {
        &record[8..]
    }

    #[test]
    fn ops_survive_encoding() {
        let raw: Vec<u8> = (0..64 * 64).map(|i| u8::from(i % 7 == 0)).collect();
        let ops = vec![SetOp::Tiles {
            item: ItemId(3),
            class: 1,
            tiles: vec![(5, TileData::Raw(raw.into())), (6, TileData::Uniform(0))],
        }];
        let record = encode_record(&ops);
        let len = read_u32(&record[..4]) as usize;
        assert_eq!(len, record.len() - 8);
        assert_eq!(decode_payload(payload_of(&record)), Ok(ops));
    }

    #[test]
    fn blobs_pointing_outside_the_record_are_rejected() {
        let json =
            br#"[{"op":"tiles","item":0,"class":1,"tiles":[{"index":0,"offset":10,"len":99}]}]"#;
        let mut payload = u32::try_from(json.len()).unwrap().to_le_bytes().to_vec();
        payload.extend_from_slice(json);
        payload.extend_from_slice(&[0; 4]);
        assert!(decode_payload(&payload).is_err());
        assert!(decode_payload(&[1, 0]).is_err());
    }

    #[test]
    fn items_of_invalid_size_are_rejected() {
        let json = br#"[{"op":"add_item","key":"a","width":0,"height":4}]"#;
        let mut payload = u32::try_from(json.len()).unwrap().to_le_bytes().to_vec();
        payload.extend_from_slice(json);
        assert!(decode_payload(&payload).is_err());
    }
}
