/// How the capture is doing. Its text (`rawValue`) is what `/v1/status` shows as `capture.state`.
public enum CaptureState: Sendable, Hashable, RawRepresentable, CustomStringConvertible, Codable {
    /// No report from the capture loops yet.
    case starting
    case active
    /// The interface failed and is being reopened; `reason` is the latest failure.
    case reopening(reason: String)
    /// Several interfaces, each with its own state, in the configured order.
    case interfaces([InterfaceCaptureState])

    /// `starting`, `active`, `reopening: REASON`, or `eth0: active; eth1: reopening: REASON`.
    public var rawValue: String {
        switch self {
        case .starting: "starting"
        case .active: "active"
        case .reopening(let reason): Self.reopeningPrefix + reason
        case .interfaces(let each): each.map { "\($0.interface): \($0.state.rawValue)" }.joined(separator: "; ")
        }
    }

    /// Reads the text back. Several interfaces are split at `; ` and each at its first `: `, so a reason that
    /// itself holds `; ` reads back as more interfaces than there were.
    public init?(rawValue: String) {
        switch rawValue {
        case "starting": self = .starting
        case "active": self = .active
        case _ where rawValue.hasPrefix(Self.reopeningPrefix):
            self = .reopening(reason: String(rawValue.dropFirst(Self.reopeningPrefix.count)))
        default:
            var each = [InterfaceCaptureState]()
            for part in rawValue.split(separator: "; ", omittingEmptySubsequences: false) {
                guard let colon = part.firstRange(of: ": "),
                    let state = CaptureState(rawValue: String(part[colon.upperBound...]))
                else { return nil }
                each.append(InterfaceCaptureState(interface: String(part[..<colon.lowerBound]), state: state))
            }
            self = .interfaces(each)
        }
    }

    public var description: String { rawValue }

    /// Encoded as its text, exactly as the status has always shown it.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let state = CaptureState(rawValue: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "no capture state: \(text)")
            )
        }
        self = state
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private static let reopeningPrefix = "reopening: "
}

/// One interface's capture state, among several.
public struct InterfaceCaptureState: Sendable, Hashable {
    public var interface: String
    public var state: CaptureState

    public init(interface: String, state: CaptureState) {
        self.interface = interface
        self.state = state
    }
}
