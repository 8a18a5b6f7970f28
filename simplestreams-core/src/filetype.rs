//! What a file is, from its first bytes (and, for VHD, its last 512): the formats cloud images
//! and image tarballs come in. Publishers use it for an item's `ftype` and Glance's
//! `disk_format`; readers of compressed images use it to tell what the decompressed bytes are.

/// A file type recognised by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// QEMU copy-on-write v2/v3 (`QFI\xfb`).
    Qcow2,
    /// VMware disk (`KDMV`).
    Vmdk,
    /// Hyper-V VHD (a `conectix` footer, or a copy of it at the start).
    Vhd,
    /// Hyper-V VHDX (`vhdxfile`).
    Vhdx,
    /// An ISO 9660 image (`CD001` at sector 16).
    Iso,
    /// A squashfs filesystem (`hsqs`).
    Squashfs,
    /// A raw disk with a partition table (an MBR signature, or a GPT header).
    Raw,
    /// xz-compressed.
    Xz,
    /// gzip-compressed.
    Gzip,
    /// bzip2-compressed.
    Bzip2,
    /// zstd-compressed.
    Zstd,
    /// A (POSIX/GNU) tar archive.
    Tar,
}

/// Bytes of the start of a file [`detect`] needs: the ISO signature sits at 32 KiB + 1.
pub const HEAD_BYTES: usize = 0x8006;

impl FileType {
    /// Glance's `disk_format` for an image of this type, if it is one.
    pub fn disk_format(self) -> Option<&'static str> {
        Some(match self {
            FileType::Qcow2 => "qcow2",
            FileType::Vmdk => "vmdk",
            FileType::Vhd => "vhd",
            FileType::Vhdx => "vhdx",
            FileType::Iso => "iso",
            FileType::Raw => "raw",
            FileType::Squashfs => "squashfs",
            _ => return None,
        })
    }

    /// Whether this is a compression wrapper around other content.
    pub fn is_compressed(self) -> bool {
        matches!(
            self,
            FileType::Xz | FileType::Gzip | FileType::Bzip2 | FileType::Zstd
        )
    }

    /// The usual file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileType::Qcow2 => "qcow2",
            FileType::Vmdk => "vmdk",
            FileType::Vhd => "vhd",
            FileType::Vhdx => "vhdx",
            FileType::Iso => "iso",
            FileType::Squashfs => "squashfs",
            FileType::Raw => "img",
            FileType::Xz => "xz",
            FileType::Gzip => "gz",
            FileType::Bzip2 => "bz2",
            FileType::Zstd => "zst",
            FileType::Tar => "tar",
        }
    }
}

/// The type of a file whose first bytes are `head` (at least [`HEAD_BYTES`] when the file is
/// that long) and last 512 bytes `tail` (for a VHD footer), or `None` when it is none of
/// these. Compression is recognised first: what a compressed file holds is for the caller to
/// find out after decompressing.
pub fn detect(head: &[u8], tail: &[u8]) -> Option<FileType> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"\xfd7zXZ\x00") {
        return Some(FileType::Xz);
    }
    if at(0, b"\x1f\x8b") {
        return Some(FileType::Gzip);
    }
    if at(0, b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        return Some(FileType::Bzip2);
    }
    if at(0, b"\x28\xb5\x2f\xfd") {
        return Some(FileType::Zstd);
    }
    if at(0, b"QFI\xfb") {
        return Some(FileType::Qcow2);
    }
    if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        return Some(FileType::Vmdk);
    }
    if at(0, b"vhdxfile") {
        return Some(FileType::Vhdx);
    }
    if at(0, b"conectix") || tail.starts_with(b"conectix") {
        return Some(FileType::Vhd);
    }
    if at(0, b"hsqs") {
        return Some(FileType::Squashfs);
    }
    if at(0x8001, b"CD001") {
        return Some(FileType::Iso);
    }
    if at(257, b"ustar") {
        return Some(FileType::Tar);
    }
    if at(512, b"EFI PART") || at(510, b"\x55\xaa") {
        return Some(FileType::Raw);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, magic: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEAD_BYTES];
        v[offset..offset + magic.len()].copy_from_slice(magic);
        v
    }

    #[test]
    fn every_format_is_told_apart_by_its_magic() {
        let cases: [(Vec<u8>, FileType); 12] = [
            (with(0, b"QFI\xfb\x00\x00\x00\x03"), FileType::Qcow2),
            (with(0, b"KDMV"), FileType::Vmdk),
            (with(0, b"vhdxfile"), FileType::Vhdx),
            (with(0, b"conectix"), FileType::Vhd),
            (with(0x8001, b"CD001"), FileType::Iso),
            (with(0, b"hsqs"), FileType::Squashfs),
            (with(510, b"\x55\xaa"), FileType::Raw),
            (with(0, b"\xfd7zXZ\x00"), FileType::Xz),
            (with(0, b"\x1f\x8b\x08"), FileType::Gzip),
            (with(0, b"BZh9"), FileType::Bzip2),
            (with(0, b"\x28\xb5\x2f\xfd"), FileType::Zstd),
            (with(257, b"ustar\x0000"), FileType::Tar),
        ];
        for (head, want) in cases {
            assert_eq!(detect(&head, &[]), Some(want), "{want:?}");
        }
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        assert_eq!(detect(&[0u8; 600], &footer), Some(FileType::Vhd));
        assert_eq!(detect(&[0u8; 600], &[]), None, "zeros are nothing");
        assert_eq!(detect(b"QF", &[]), None, "too short to be anything");
        assert_eq!(FileType::Qcow2.disk_format(), Some("qcow2"));
        assert!(FileType::Xz.is_compressed() && !FileType::Raw.is_compressed());
    }
}
