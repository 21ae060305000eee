/// Where the daemon's query socket is, for the daemon and its clients.
public enum QuerySocketPath {
    /// The default path of the socket (the packaged unit's `RuntimeDirectory=synwatch`).
    public static let standard = "/run/synwatch/synwatch.sock"
}
