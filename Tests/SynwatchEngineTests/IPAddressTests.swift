import Testing

@testable import SynwatchEngine

@Suite("IP addresses")
struct IPAddressTests {
    @Test(arguments: [
        ("198.18.0.1", 0xC612_0001 as UInt32),
        ("0.0.0.0", 0),
        ("255.255.255.255", 0xFFFF_FFFF),
        ("10.0.0.0", 0x0A00_0000),
        ("::ffff:198.18.0.1", 0xC612_0001),
        ("::FFFF:c612:1", 0xC612_0001),
        ("0:0:0:0:0:ffff:198.18.255.254", 0xC612_FFFE),
    ])
    func parsesIPv4(_ text: String, _ value: UInt32) throws {
        let address = try #require(IPAddress(text))
        #expect(address == IPAddress(ipv4: value))
        #expect(address.isIPv4)
        #expect(address.ipv4 == value)
        #expect(address.high == 0)
        #expect(address.low == 0x0000_FFFF_0000_0000 | UInt64(value))
    }

    @Test(arguments: [
        ("::", 0 as UInt64, 0 as UInt64),
        ("::1", 0, 1),
        ("1::", 0x0001_0000_0000_0000, 0),
        ("2001:db8::1", 0x2001_0DB8_0000_0000, 1),
        ("2001:DB8:0:0:0:0:0:1", 0x2001_0DB8_0000_0000, 1),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", 0x2001_0DB8_0000_0000, 1),
        ("1:2:3:4:5:6:7:8", 0x0001_0002_0003_0004, 0x0005_0006_0007_0008),
        ("1:2:3:4:5:6:7::", 0x0001_0002_0003_0004, 0x0005_0006_0007_0000),
        ("::2:3:4:5:6:7:8", 0x0000_0002_0003_0004, 0x0005_0006_0007_0008),
        ("fe80::1:2", 0xFE80_0000_0000_0000, 0x0000_0000_0001_0002),
        ("64:ff9b::198.51.100.1", 0x0064_FF9B_0000_0000, 0x0000_0000_C633_6401),
        ("::198.18.0.1", 0, 0x0000_0000_C612_0001),
        ("1:2:3:4:5:6:1.2.3.4", 0x0001_0002_0003_0004, 0x0005_0006_0102_0304),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .max, .max),
    ])
    func parsesIPv6(_ text: String, _ high: UInt64, _ low: UInt64) throws {
        let address = try #require(IPAddress(text))
        #expect(address == IPAddress(high: high, low: low))
        #expect(!address.isIPv4)
        #expect(address.ipv4 == nil)
    }

    @Test(arguments: [
        "", " ", ".", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.999", "1..2.3", "1.2.3.", ".1.2.3",
        " 1.2.3.4", "1.2.3.4 ", "1.2.3.0x4", "1.2.3.4/32", "1234.1.1.1",
        ":", ":::", "1:::2", "1::2::3", ":1::", "1::2:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:",
        "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
        "12345::", "g::", "::g", "1: :2", "fe80::1%eth0", "::1.2.3", "::1.2.3.4.5", "::256.1.1.1",
        "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3.4:1", "[::1]", "2001:db8::1/64",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    /// Text that integer parsing alone would let through: signs, leading zeros (read as octal by
    /// inet_aton, rejected by inet_pton) and an IPv4 tail that is not at the end.
    @Test(arguments: [
        "+1.2.3.4", "1.-0.3.4", "1.2.3.+4", "01.2.3.4", "1.2.3.04", "00.1.2.3", "+1::", "1:-0::", "::+fff", "1.2.3.4::",
        "1.2.3.4::5",
    ])
    func rejectsTextThatOnlyLooksNumeric(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test(arguments: [
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0"),
        ("0:0:1:0:0:0:1:0", "0:0:1::1:0"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("ABCD:EF01:2345:6789:abcd:ef01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
        ("::ffff:198.18.0.1", "198.18.0.1"),
        ("::198.18.0.1", "::c612:1"),
        ("64:ff9b::198.51.100.1", "64:ff9b::c633:6401"),
        ("198.18.0.1", "198.18.0.1"),
        ("0.0.0.0", "0.0.0.0"),
    ])
    func formatsCanonically(_ text: String, _ canonical: String) throws {
        #expect(try #require(IPAddress(text)).description == canonical)
    }

    /// Random addresses, half their groups zero so every compression case comes up, checked against
    /// the rules of RFC 5952 rather than a second implementation of them.
    @Test
    func randomAddressesRoundTripInCanonicalForm() throws {
        var random = SeededRandom(seed: 5952)
        for _ in 0..<20_000 {
            var groups = (0..<8).map { _ in random.chance(0.5) ? 0 : UInt16.random(in: 1...0xFFFF, using: &random) }
            if random.chance(0.1) { groups = [0, 0, 0, 0, 0, 0xFFFF] + groups.suffix(2) }
            let high = groups[0..<4].reduce(0 as UInt64) { $0 << 16 | UInt64($1) }
            let low = groups[4..<8].reduce(0 as UInt64) { $0 << 16 | UInt64($1) }
            let address = IPAddress(high: high, low: low)
            let text = address.description
            #expect(IPAddress(text) == address, "\(text)")
            if address.isIPv4 {
                #expect(text.split(separator: ".").count == 4, "\(text)")
            } else {
                try checkRFC5952(text, groups: groups)
            }
        }
    }

    @Test
    func orderAndIPv4Values() {
        #expect(IPAddress(ipv4: 0xC612_0001) < IPAddress(ipv4: 0xC612_0002))
        #expect(IPAddress(ipv4: 0xFFFF_FFFF) < IPAddress(high: 1, low: 0))
        #expect(IPAddress.zero < IPAddress(ipv4: 0))
        #expect(!IPAddress.zero.isIPv4)
        #expect(IPAddress(high: 0, low: 0x0001_FFFF_0000_0001).ipv4 == nil)
    }

    /// Checks the text form of a non-IPv4 address: lower case, no leading zeros, `::` once at most,
    /// for the longest run of two or more zero groups (the first of equal runs), and nowhere else.
    func checkRFC5952(_ text: String, groups: [UInt16]) throws {
        #expect(text == text.lowercased())
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        try #require(halves.count <= 2, "\(text)")
        for half in halves where !half.isEmpty {
            for piece in half.split(separator: ":", omittingEmptySubsequences: false) {
                #expect((1...4).contains(piece.count) && (piece == "0" || !piece.hasPrefix("0")), "\(text)")
            }
        }
        var runs = [(start: Int, length: Int)]()
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            let start = index
            while index < 8 && groups[index] == 0 { index += 1 }
            runs.append((start, index - start))
        }
        // The first of the longest runs: among equal lengths, the earlier one ranks higher.
        let longest = runs.filter { $0.length >= 2 }.max {
            $0.length < $1.length || ($0.length == $1.length && $0.start > $1.start)
        }
        if let longest {
            try #require(halves.count == 2, "\(text) does not compress \(groups)")
            let before = halves[0].isEmpty ? 0 : halves[0].split(separator: ":").count
            #expect(before == longest.start, "\(text) compresses the wrong run of \(groups)")
        } else {
            #expect(halves.count == 1, "\(text) compresses a single zero group")
        }
    }
}
