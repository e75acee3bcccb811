import Foundation

/// The Salsa20 core (Bernstein, "The Salsa20 family of stream ciphers") and its two uses in NaCl's secretbox:
/// HSalsa20 derives a subkey from a key and the first 16 bytes of a 24-byte nonce; XSalsa20 is Salsa20 under
/// that subkey with the nonce's last 8 bytes.
enum Salsa20 {
    /// "expand 32-byte k" as four little-endian words.
    static let sigma: [UInt32] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]

    @inline(__always)
    static func rotl(_ v: UInt32, _ n: UInt32) -> UInt32 { (v << n) | (v >> (32 - n)) }

    static func words(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> [UInt32] {
        (0..<count).map { i in
            let o = offset + 4 * i
            return UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16
                | UInt32(bytes[o + 3]) << 24
        }
    }

    /// The 16-word input block: constants on the diagonal, key, and 16 bytes of nonce/counter in the middle.
    static func block(key: [UInt8], middle: [UInt32]) -> [UInt32] {
        let k = words(key, 0, 8)
        return [
            sigma[0], k[0], k[1], k[2], k[3], sigma[1], middle[0], middle[1], middle[2], middle[3], sigma[2], k[4],
            k[5], k[6], k[7], sigma[3],
        ]
    }

    /// Twenty rounds (ten double rounds) over `x`, in place.
    static func rounds(_ x: inout [UInt32]) {
        for _ in 0..<10 {
            // Column round.
            x[4] ^= rotl(x[0] &+ x[12], 7)
            x[8] ^= rotl(x[4] &+ x[0], 9)
            x[12] ^= rotl(x[8] &+ x[4], 13)
            x[0] ^= rotl(x[12] &+ x[8], 18)
            x[9] ^= rotl(x[5] &+ x[1], 7)
            x[13] ^= rotl(x[9] &+ x[5], 9)
            x[1] ^= rotl(x[13] &+ x[9], 13)
            x[5] ^= rotl(x[1] &+ x[13], 18)
            x[14] ^= rotl(x[10] &+ x[6], 7)
            x[2] ^= rotl(x[14] &+ x[10], 9)
            x[6] ^= rotl(x[2] &+ x[14], 13)
            x[10] ^= rotl(x[6] &+ x[2], 18)
            x[3] ^= rotl(x[15] &+ x[11], 7)
            x[7] ^= rotl(x[3] &+ x[15], 9)
            x[11] ^= rotl(x[7] &+ x[3], 13)
            x[15] ^= rotl(x[11] &+ x[7], 18)
            // Row round.
            x[1] ^= rotl(x[0] &+ x[3], 7)
            x[2] ^= rotl(x[1] &+ x[0], 9)
            x[3] ^= rotl(x[2] &+ x[1], 13)
            x[0] ^= rotl(x[3] &+ x[2], 18)
            x[6] ^= rotl(x[5] &+ x[4], 7)
            x[7] ^= rotl(x[6] &+ x[5], 9)
            x[4] ^= rotl(x[7] &+ x[6], 13)
            x[5] ^= rotl(x[4] &+ x[7], 18)
            x[11] ^= rotl(x[10] &+ x[9], 7)
            x[8] ^= rotl(x[11] &+ x[10], 9)
            x[9] ^= rotl(x[8] &+ x[11], 13)
            x[10] ^= rotl(x[9] &+ x[8], 18)
            x[12] ^= rotl(x[15] &+ x[14], 7)
            x[13] ^= rotl(x[12] &+ x[15], 9)
            x[14] ^= rotl(x[13] &+ x[12], 13)
            x[15] ^= rotl(x[14] &+ x[13], 18)
        }
    }

    static func bytes(_ words: [UInt32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(words.count * 4)
        for w in words { out += [UInt8(w & 0xff), UInt8(w >> 8 & 0xff), UInt8(w >> 16 & 0xff), UInt8(w >> 24)] }
        return out
    }

    /// HSalsa20: 32 bytes from a 32-byte key and a 16-byte input (no final addition; words 0, 5, 10, 15, 6–9).
    static func hsalsa20(key: [UInt8], input: [UInt8]) -> [UInt8] {
        precondition(key.count == 32 && input.count == 16)
        var x = block(key: key, middle: words(input, 0, 4))
        rounds(&x)
        return bytes([x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]])
    }

    /// `count` bytes of the XSalsa20 key stream for a 32-byte key and a 24-byte nonce, from block 0.
    static func xsalsa20Stream(key: [UInt8], nonce: [UInt8], count: Int) -> [UInt8] {
        precondition(key.count == 32 && nonce.count == 24)
        let subkey = hsalsa20(key: key, input: Array(nonce[0..<16]))
        let n = words(nonce, 16, 2)
        var out: [UInt8] = []
        out.reserveCapacity(count + 64)
        var counter: UInt64 = 0
        while out.count < count {
            let input = block(key: subkey, middle: [n[0], n[1], UInt32(counter & 0xffff_ffff), UInt32(counter >> 32)])
            var x = input
            rounds(&x)
            for i in 0..<16 { x[i] = x[i] &+ input[i] }
            out += bytes(x)
            counter += 1
        }
        return Array(out[0..<count])
    }
}
