// CRC-32C (Castagnoli), the checksum used by ext4, iSCSI and LevelDB/RocksDB
// logs. SheetJS `crc-32` ships a portable slice-by-16 implementation that
// works on Uint8Array in every runtime (no Buffer, no native addon).
import CRC32C from "crc-32/crc32c.js"

/** Unsigned CRC-32C of `bytes`. */
export const crc32c = (bytes: Uint8Array): number => CRC32C.buf(bytes, 0) >>> 0
