/// An IPv4 or IPv6 address as a fixed-width value: 128 bits, IPv4 stored IPv4-mapped
/// (`::ffff:a.b.c.d`), so tables hold one key type for both families and hash two words.
public struct IPAddress: Hashable, Comparable, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// The first 64 bits in network order, as an integer.
    public var high: UInt64
    /// The last 64 bits in network order, as an integer.
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32 bits in host order (`0xC6120001` is 198.18.0.1).
    public init(ipv4 value: UInt32) {
        self.high = 0
        self.low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    public static let zero = IPAddress(high: 0, low: 0)

    public var isIPv4: Bool { high == 0 && (low >> 32) == 0xFFFF }

    /// The IPv4 address in host order, when this is one.
    public var ipv4: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPAddress.parseIPv4(Substring(text)) {
            self.init(ipv4: v4)
            return
        }
        guard let (high, low) = IPAddress.parseIPv6(Substring(text)) else { return nil }
        self.init(high: high, low: low)
    }

    public var description: String {
        if let v4 = ipv4 {
            return "\(v4 >> 24).\((v4 >> 16) & 0xFF).\((v4 >> 8) & 0xFF).\(v4 & 0xFF)"
        }
        var groups = [UInt16]()
        groups.reserveCapacity(8)
        for shift in stride(from: 48, through: 0, by: -16) {
            groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift)))
        }
        for shift in stride(from: 48, through: 0, by: -16) {
            groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift)))
        }
        // RFC 5952: compress the longest run (of at least two) of zero groups, the first one on a tie.
        var bestStart = -1, bestLength = 1, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { (bestStart, bestLength) = (runStart, index - runStart) }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    private static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            // Decimal digits without a leading zero, as inet_pton wants: inet_aton would read "010" as octal.
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy(\.isASCIIDigit),
                part.utf8.count == 1 || part.utf8.first != UInt8(ascii: "0"), let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseIPv6(_ text: Substring) -> (UInt64, UInt64)? {
        var groups = [UInt16]()
        var tail = [UInt16]()
        var sawGap = false
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        // An IPv4 tail may end the address, nothing else.
        func parse(_ part: Substring, into target: inout [UInt16], endsAddress: Bool) -> Bool {
            guard !part.isEmpty else { return true }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if endsAddress, index == pieces.count - 1, piece.contains("."), let v4 = parseIPv4(piece) {
                    target.append(UInt16(v4 >> 16))
                    target.append(UInt16(v4 & 0xFFFF))
                } else {
                    // Hex digits only: UInt16(_:radix:) alone would also take a sign.
                    guard (1...4).contains(piece.utf8.count), piece.utf8.allSatisfy(\.isASCIIHexDigit),
                        let group = UInt16(piece, radix: 16)
                    else { return false }
                    target.append(group)
                }
            }
            return true
        }
        guard parse(halves[0], into: &groups, endsAddress: halves.count == 1) else { return nil }
        if halves.count == 2 {
            sawGap = true
            guard parse(halves[1], into: &tail, endsAddress: true) else { return nil }
        }
        let missing = 8 - groups.count - tail.count
        guard sawGap ? missing >= 1 : missing == 0 else { return nil }
        let all = groups + [UInt16](repeating: 0, count: sawGap ? missing : 0) + tail
        var high: UInt64 = 0, low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(all[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(all[index]) }
        return (high, low)
    }
}

extension Substring {
    /// Splits at the first `::` (IPv6 zero compression) into at most two parts; more `::` give three.
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var parts = [Substring]()
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":", next < endIndex, self[next] == ":" {
                parts.append(self[start..<index])
                start = self.index(after: next)
                index = start
                continue
            }
            index = next
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

extension UInt8 {
    fileprivate var isASCIIDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }

    fileprivate var isASCIIHexDigit: Bool {
        isASCIIDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self | 0x20)
    }
}
