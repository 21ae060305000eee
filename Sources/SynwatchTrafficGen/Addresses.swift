/// The IP version of a scenario: every generator in it uses the same family.
public enum AddressFamily: String, Sendable, Codable {
    case ipv4
    case ipv6
}

/// An IPv4 or IPv6 address as a fixed-width value, so packets carry it without allocating.
///
/// IPv4 is held in the low 32 bits of `low` with `high == 0` and `isIPv6 == false`.
public struct NetAddress: Hashable, Sendable, CustomStringConvertible {
    /// The first 64 bits of an IPv6 address in network order, as an integer (0 for IPv4).
    public var high: UInt64
    /// The last 64 bits of an IPv6 address, or the IPv4 address in its low 32 bits.
    public var low: UInt64
    /// The family the address belongs to.
    public var family: AddressFamily

    /// An IPv4 address from its 32 bits in host order (`0xC612_000A` is 198.18.0.10).
    public init(ipv4 value: UInt32) {
        self.high = 0
        self.low = UInt64(value)
        self.family = .ipv4
    }

    /// An IPv6 address from its two 64-bit halves in host order.
    public init(ipv6High high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
        self.family = .ipv6
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (`::` compression allowed, no embedded IPv4 tail).
    ///
    /// Given a string literal, Swift picks the non-failable literal initializer instead, which traps on
    /// invalid text; pass a `String` value to get nil.
    ///
    /// - Parameters:
    ///   - text: the address, such as `198.18.0.10` or `2001:db8::a`.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let (high, low) = NetAddress.parseIPv6(text) else { return nil }
            self.init(ipv6High: high, low: low)
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let octet = UInt32(part), octet < 256
                else { return nil }
                value = value << 8 | octet
            }
            self.init(ipv4: value)
        }
    }

    /// The IPv4 address in host order (meaningful only for IPv4).
    public var ipv4: UInt32 { UInt32(truncatingIfNeeded: low) }

    public var description: String {
        if family == .ipv4 {
            let value = ipv4
            return "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
        }
        let groups = (0..<8).map { index -> UInt16 in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (index % 4)))
        }
        // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
        var best = 0..<0
        var index = 0
        while index < 8 {
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > best.count && end - index >= 2 { best = index..<end }
            index = max(end, index + 1)
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        return best.isEmpty ? hex(0..<8) : hex(0..<best.lowerBound) + "::" + hex(best.upperBound..<8)
    }

    private static func parseIPv6(_ text: String) -> (UInt64, UInt64)? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            guard !part.isEmpty else { return [] }
            var result = [UInt16]()
            for piece in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(piece.count), let group = UInt16(piece, radix: 16) else { return nil }
                result.append(group)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        let high = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }
}

extension NetAddress: ExpressibleByStringLiteral {
    /// A literal address; an invalid literal is a programming error and traps.
    public init(stringLiteral value: String) {
        guard let address = NetAddress(value) else { preconditionFailure("invalid IP address literal \(value)") }
        self = address
    }
}

extension NetAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = NetAddress(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid IP address \(text)")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An address prefix (CIDR block) from which generators draw addresses.
public struct NetPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block (host bits zero).
    public var base: NetAddress
    /// The number of leading network bits.
    public var length: Int

    /// A prefix from its base address and length; host bits of `base` are cleared.
    ///
    /// - Parameters:
    ///   - base: any address inside the block.
    ///   - length: network bits, at most 32 for IPv4 and 128 for IPv6.
    public init(_ base: NetAddress, length: Int) {
        precondition(length >= 0 && length <= (base.family == .ipv4 ? 32 : 128), "prefix length out of range")
        self.length = length
        self.base = base
        let hostBits = self.hostBits
        if base.family == .ipv4 {
            self.base.low &= hostBits >= 32 ? 0 : ~((UInt64(1) << UInt64(hostBits)) - 1) & 0xFFFF_FFFF
        } else {
            if hostBits >= 64 {
                self.base.low = 0
                self.base.high &= hostBits >= 128 ? 0 : ~((UInt64(1) << UInt64(hostBits - 64)) - 1)
            } else {
                self.base.low &= ~((UInt64(1) << UInt64(hostBits)) - 1)
            }
        }
    }

    /// Parses `ADDRESS/LENGTH`, such as `198.19.0.0/16` or `2001:db8:ff00::/40`.
    ///
    /// - Parameters:
    ///   - text: the prefix in CIDR notation.
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let address = NetAddress(String(parts[0])), let length = Int(parts[1]),
            length >= 0, length <= (address.family == .ipv4 ? 32 : 128)
        else { return nil }
        self.init(address, length: length)
    }

    /// The family of the addresses in the block.
    public var family: AddressFamily { base.family }

    /// The number of host bits (32 or 128 minus `length`).
    public var hostBits: Int { (family == .ipv4 ? 32 : 128) - length }

    /// How many distinct addresses `address(at:)` and `permutedAddress(_:)` can give (capped at 2^64).
    public var capacity: UInt64 { hostBits >= 64 ? .max : UInt64(1) << UInt64(hostBits) }

    /// The address at `index` inside the block (the index wraps at `capacity`).
    public func address(at index: UInt64) -> NetAddress {
        var address = base
        address.low |= hostBits >= 64 ? index : index & (capacity - 1)
        return address
    }

    /// The `index`-th address of a fixed pseudo-random permutation of the block.
    ///
    /// Indices below `capacity` give distinct addresses, so a spoofed flood can have exactly as many
    /// sources as it asks for without keeping a set of the ones already used.
    public func permutedAddress(_ index: UInt64) -> NetAddress {
        // Each step (odd multiply, add, xor with a right shift) is a bijection on hostBits-bit integers.
        let bits = UInt64(min(hostBits, 64))
        let mask = bits == 64 ? UInt64.max : (UInt64(1) << bits) - 1
        var value = (index &* 0x9E37_79B9_7F4A_7C15 &+ 0x5851_F42D_4C95_7F2D) & mask
        value ^= value >> ((bits + 1) / 2)
        value = (value &* 0xBF58_476D_1CE4_E5B9) & mask
        return address(at: value)
    }

    /// Whether `address` lies inside the block.
    public func contains(_ address: NetAddress) -> Bool {
        address.family == family && NetPrefix(address, length: length).base == base
    }

    public var description: String { "\(base)/\(length)" }
}

extension NetPrefix: ExpressibleByStringLiteral {
    /// A literal prefix; an invalid literal is a programming error and traps.
    public init(stringLiteral value: String) {
        guard let prefix = NetPrefix(value) else { preconditionFailure("invalid prefix literal \(value)") }
        self = prefix
    }
}

/// A TCP service: an address and a port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: NetAddress
    public var port: UInt16

    /// A service at `address`, `port`.
    public init(_ address: NetAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `ADDRESS:PORT` for IPv4 or `[ADDRESS]:PORT` for IPv6.
    ///
    /// - Parameters:
    ///   - text: the service, such as `198.18.0.10:80` or `[2001:db8::a]:443`.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil
        }
        guard let address = NetAddress(String(host)) else { return nil }
        self.init(address, port)
    }

    public var description: String {
        address.family == .ipv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// The default addresses of each role, all inside 198.18.0.0/15 or 2001:db8::/32 and kept apart so a
/// spoofed source never equals a service.
public struct AddressPlan: Sendable {
    /// Our servers; floods, scans and backscatter aim at the first one unless told otherwise.
    public var servers: [NetAddress]
    /// The pool of benign clients.
    public var clients: NetPrefix
    /// New clients of a flash crowd.
    public var crowd: NetPrefix
    /// Real (non-spoofed) attackers: single-source flooders, bots and scanners.
    public var attackers: NetPrefix
    /// Spoofed sources of a random-source flood.
    public var spoofed: NetPrefix
    /// Hosts that answer someone else's spoofed SYNs (backscatter).
    public var reflectors: NetPrefix

    /// 198.18.0.10 and .11 serve; clients 198.18.16.0/20; attackers 198.18.32.0/19; crowd 198.18.64.0/18;
    /// reflectors 198.18.128.0/17; spoofed sources 198.19.0.0/16.
    public static let ipv4 = AddressPlan(
        servers: ["198.18.0.10", "198.18.0.11"],
        clients: "198.18.16.0/20",
        crowd: "198.18.64.0/18",
        attackers: "198.18.32.0/19",
        spoofed: "198.19.0.0/16",
        reflectors: "198.18.128.0/17"
    )

    /// 2001:db8::a and ::b serve; clients 2001:db8:1::/48; crowd 2001:db8:2::/48; attackers 2001:db8:3::/48;
    /// reflectors 2001:db8:4::/48; spoofed sources 2001:db8:8000::/33.
    public static let ipv6 = AddressPlan(
        servers: ["2001:db8::a", "2001:db8::b"],
        clients: "2001:db8:1::/48",
        crowd: "2001:db8:2::/48",
        attackers: "2001:db8:3::/48",
        spoofed: "2001:db8:8000::/33",
        reflectors: "2001:db8:4::/48"
    )

    /// The default plan of `family`.
    public static func `default`(for family: AddressFamily) -> AddressPlan {
        family == .ipv4 ? .ipv4 : .ipv6
    }
}
