import CPcap
import SynwatchEngine

/// A link-layer header type as libpcap reports it: a `DLT_` number, whether or not the engine decodes it.
public struct DataLinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `DLT_` number (`pcap_datalink`'s result).
    public var rawValue: Int32

    /// The link type with `DLT_` number `rawValue`.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// libpcap's short name, such as `EN10MB` or `IEEE802_11_RADIO`, if it knows the number.
    ///
    /// Wraps `pcap_datalink_val_to_name`.
    public var name: String? {
        pcap_datalink_val_to_name(rawValue).map { String(cString: $0) }
    }

    /// The engine's link type for this number, or `nil` when the engine cannot decode such frames.
    public var linkType: LinkType? {
        LinkType(rawValue: rawValue)
    }

    /// The name and number, such as `IEEE802_11_RADIO (127)`.
    public var description: String {
        "\(name ?? "unknown") (\(rawValue))"
    }
}
