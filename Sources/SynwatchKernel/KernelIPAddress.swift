import Glibc

/// An IPv4 or IPv6 address as the kernel reports it for a socket.
public struct KernelIPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Whether this is an IPv6 address.
    public let isIPv6: Bool
    /// The first 8 bytes in network order, read as a big-endian number (an IPv4 address is its top 4 bytes).
    private let high: UInt64
    /// The last 8 bytes of an IPv6 address, likewise; 0 for IPv4.
    private let low: UInt64

    /// The address whose bytes, in network order, are `bytes`: 4 for IPv4, 16 for IPv6.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        isIPv6 = bytes.count == 16
        var words: [UInt64] = [0, 0]
        for (index, byte) in bytes.enumerated() {
            words[index / 8] |= UInt64(byte) << (56 - 8 * UInt64(index % 8))
        }
        high = words[0]
        low = words[1]
    }

    /// `0.0.0.0` or `::`, which a listener binds to take every address of its family.
    public static func unspecified(ipv6: Bool) -> KernelIPAddress {
        KernelIPAddress(bytes: [UInt8](repeating: 0, count: ipv6 ? 16 : 4))!
    }

    /// Parses `198.18.0.1` or `2001:db8::1`.
    public init?(_ text: String) {
        var storage = in6_addr()
        for (family, count) in [(AF_INET, 4), (AF_INET6, 16)] {
            let parsed = withUnsafeMutableBytes(of: &storage) { inet_pton(family, text, $0.baseAddress) == 1 }
            if parsed {
                self.init(bytes: withUnsafeBytes(of: storage) { Array($0.prefix(count)) })
                return
            }
        }
        return nil
    }

    /// The bytes in network order: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        (0..<(isIPv6 ? 16 : 4)).map { index in
            UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> (56 - 8 * UInt64(index % 8)))
        }
    }

    /// The usual text form, by `inet_ntop(3)`.
    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let bytes = self.bytes
        let family = isIPv6 ? AF_INET6 : AF_INET
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// IPv4 before IPv6, then by bytes.
    public static func < (left: KernelIPAddress, right: KernelIPAddress) -> Bool {
        (left.isIPv6 ? 1 : 0, left.high, left.low) < (right.isIPv6 ? 1 : 0, right.high, right.low)
    }
}

/// A local address and TCP port: a listener, or the service a connection is for.
public struct KernelEndpoint: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var address: KernelIPAddress
    public var port: UInt16

    public init(address: KernelIPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `198.18.0.1:80` or `[2001:db8::1]:80`.
    public var description: String { address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }

    public static func < (left: KernelEndpoint, right: KernelEndpoint) -> Bool {
        (left.address, left.port) < (right.address, right.port)
    }
}
