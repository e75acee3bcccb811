import Testing

@testable import KilnOCI

@Suite struct HexTests {
    @Test func encodesLowerCaseTwoDigitsPerByte() {
        #expect(Hex.encode([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(Hex.encode([UInt8]()) == "")
    }

    @Test func decodesEitherCaseAndRoundTrips() {
        #expect(Hex.decode("000fA5ff") == [0x00, 0x0f, 0xa5, 0xff])
        #expect(Hex.decode("") == [])
        let all = (0...255).map(UInt8.init)
        #expect(Hex.decode(Hex.encode(all)) == all)
    }

    /// Odd lengths, non-hex letters, fullwidth digits (which `Character.isHexDigit` accepts) and other
    /// non-ASCII text are refused, never trapped on.
    @Test(arguments: ["0", "0g", "zz", "０１", "é0", "0 ", "\u{0}0"])
    func refusesWhatIsNotASCIIHex(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }
}
