//! A device whose writes stay in memory over a base device that is never
//! written: a scratch copy of an image, e.g. to show a read-only open the
//! result of a journal recovery without changing the image.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{BlockDevice, Op, Result, check_range};

/// Granularity of the overlay: written bytes are kept in pieces of this size.
const PIECE: u64 = 512;

/// Reads see the last bytes written through the overlay, else the base's.
pub struct OverlayDevice {
    base: Box<dyn BlockDevice>,
    /// Written pieces by index (`offset / PIECE`).
    pieces: Mutex<BTreeMap<u64, Box<[u8]>>>,
}

impl std::fmt::Debug for OverlayDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayDevice").field("len", &self.base.len()).finish_non_exhaustive()
    }
}

impl OverlayDevice {
    /// An overlay over `base`, with nothing written yet.
    pub fn new(base: Box<dyn BlockDevice>) -> Self {
        Self { base, pieces: Mutex::new(BTreeMap::new()) }
    }

    /// Number of bytes held in memory.
    pub fn overlay_bytes(&self) -> u64 {
        self.pieces.lock().unwrap_or_else(|e| e.into_inner()).len() as u64 * PIECE
    }

    /// The base device.
    pub fn base(&self) -> &dyn BlockDevice {
        &*self.base
    }

    /// Piece `i`'s bytes in `pieces`, read from the base the first time.
    fn piece<'a>(&self, pieces: &'a mut BTreeMap<u64, Box<[u8]>>, i: u64) -> Result<&'a mut Box<[u8]>> {
        if let std::collections::btree_map::Entry::Vacant(slot) = pieces.entry(i) {
            let mut buf = vec![0u8; PIECE as usize].into_boxed_slice();
            let start = i * PIECE;
            let n = (self.base.len() - start).min(PIECE) as usize;
            self.base.read_at(start, &mut buf[..n])?;
            slot.insert(buf);
        }
        Ok(pieces.get_mut(&i).expect("inserted above"))
    }
}

impl BlockDevice for OverlayDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(Op::Read, offset, buf.len(), self.len())?;
        self.base.read_at(offset, buf)?;
        let pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset + buf.len() as u64;
        for (&i, data) in pieces.range(offset / PIECE..end.div_ceil(PIECE)) {
            let (ps, pe) = (i * PIECE, i * PIECE + PIECE);
            let (s, e) = (ps.max(offset), pe.min(end));
            buf[(s - offset) as usize..(e - offset) as usize].copy_from_slice(&data[(s - ps) as usize..(e - ps) as usize]);
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(Op::Write, offset, buf.len(), self.len())?;
        let mut pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset + buf.len() as u64;
        for i in offset / PIECE..end.div_ceil(PIECE) {
            let (ps, pe) = (i * PIECE, i * PIECE + PIECE);
            let (s, e) = (ps.max(offset), pe.min(end));
            let data = self.piece(&mut pieces, i)?;
            data[(s - ps) as usize..(e - ps) as usize].copy_from_slice(&buf[(s - offset) as usize..(e - offset) as usize]);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.base.len()
    }

    fn sector_size(&self) -> u32 {
        self.base.sector_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryDevice;

    #[test]
    fn writes_stay_in_memory() {
        let base: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let dev = OverlayDevice::new(Box::new(MemoryDevice::from_vec(base.clone())));
        dev.write_at(500, &[0xAA; 30]).unwrap();
        dev.write_at(2048, &[0xBB; 512]).unwrap();
        let mut got = vec![0u8; 4096];
        dev.read_at(0, &mut got).unwrap();
        let mut want = base.clone();
        want[500..530].fill(0xAA);
        want[2048..2560].fill(0xBB);
        assert_eq!(got, want);
        let mut under = vec![0u8; 4096];
        dev.base().read_at(0, &mut under).unwrap();
        assert_eq!(under, base, "the base is never written");
        assert!(dev.write_at(4090, &[0; 10]).is_err());
        assert_eq!(dev.overlay_bytes(), 3 * PIECE);
    }
}
