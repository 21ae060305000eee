import SynwatchEngine
import SynwatchProtocol
import Testing

/// Services as every output names them: journald messages, the report, systemd's STATUS line.
@Suite struct ServiceTextTests {
    @Test func addressesAndPorts() throws {
        let v4 = try #require(IPAddress("198.18.0.2"))
        let v6 = try #require(IPAddress("2001:db8::2"))
        #expect(v4.serviceText(port: 80) == "198.18.0.2:80")
        #expect(v6.serviceText(port: 80) == "[2001:db8::2]:80")
        #expect(v4.serviceText(port: nil) == "198.18.0.2 (all ports)")
        #expect(v6.serviceText(port: nil) == "[2001:db8::2] (all ports)")
    }
}
