import Foundation
import SynwatchDaemon
import Testing

@Suite("Capture state")
struct CaptureStateTests {
    static let cases: [(CaptureState, String)] = [
        (.starting, "starting"),
        (.active, "active"),
        (
            .reopening(reason: "pcap_activate: eth9: No such device exists"),
            "reopening: pcap_activate: eth9: No such device exists"
        ),
        (
            .interfaces([
                InterfaceCaptureState(interface: "eth0", state: .active),
                InterfaceCaptureState(interface: "eth1", state: .reopening(reason: "interface went down")),
            ]),
            "eth0: active; eth1: reopening: interface went down"
        ),
    ]

    @Test("Its text is the status's, and reads back", arguments: cases)
    func text(state: CaptureState, text: String) {
        #expect(state.rawValue == text)
        #expect(CaptureState(rawValue: text) == state)
    }

    @Test("JSON holds the text alone, and decodes back", arguments: cases)
    func json(state: CaptureState, text: String) throws {
        let encoded = try JSONEncoder().encode(CaptureStatusField(state: state))
        #expect(String(decoding: encoded, as: UTF8.self) == "{\"state\":\(String(reflecting: text))}")
        #expect(try JSONDecoder().decode(CaptureStatusField.self, from: encoded).state == state)
    }

    @Test("Text that names no state is refused", arguments: ["", "idle", "eth0 active", "eth0: idle"])
    func unknown(text: String) {
        #expect(CaptureState(rawValue: text) == nil)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(CaptureStatusField.self, from: Data("{\"state\":\"\(text)\"}".utf8))
        }
    }
}

/// The state as a field of an object, as `/v1/status` has it.
private struct CaptureStatusField: Codable {
    var state: CaptureState
}
