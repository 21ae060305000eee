import SynwatchEngine

extension IPAddress {
    /// A service as operators write it: `198.18.0.2:80`, `[2001:db8::2]:80`, or `198.18.0.2 (all ports)` for a
    /// flood spread over a host's ports (`port` nil).
    public func serviceText(port: UInt16?) -> String {
        let host = isIPv4 ? description : "[\(self)]"
        return port.map { "\(host):\($0)" } ?? "\(host) (all ports)"
    }
}
