import SynwatchCapture
import SynwatchEngine
import Testing

/// Each way a capture can fail to open gives its own reason, the failing call and a message that names the input.
@Suite struct CaptureErrorTests {
    func openError(_ path: String, allowsMapping: Bool = true) -> CaptureError? {
        #expect(throws: CaptureError.self) { try CaptureFileReader(.file(path), allowsMapping: allowsMapping) }
    }

    @Test("A missing file", arguments: [true, false])
    func missingFile(allowsMapping: Bool) {
        let directory = TemporaryDirectory()
        let error = openError("\(directory.path)/absent.pcap", allowsMapping: allowsMapping)
        #expect(error?.reason == .fileNotFound)
        #expect(error?.call == "open")
        #expect(error?.message == "No such file or directory")
        #expect(error?.description == "\(directory.path)/absent.pcap: no such file (open: No such file or directory)")
    }

    @Test("A directory")
    func directory() {
        let directory = TemporaryDirectory()
        let error = openError(directory.path)
        #expect(error?.reason == .unreadable)
        #expect(error?.message == "Is a directory")
    }

    @Test("Text, an empty file and a bare header fragment are not capture files", arguments: [true, false])
    func notACaptureFile(allowsMapping: Bool) {
        let directory = TemporaryDirectory()
        let text = directory.write("notes.txt", Array("not a capture\n".utf8))
        let textError = openError(text, allowsMapping: allowsMapping)
        #expect(textError?.reason == .notACaptureFile)
        #expect(textError?.call == "pcap_fopen_offline_with_tstamp_precision")
        #expect(textError?.message == "unknown file format")
        #expect(textError?.description.hasPrefix("\(text): not a pcap or pcapng capture file") == true)

        let empty = directory.write("empty.pcap", [])
        #expect(openError(empty, allowsMapping: allowsMapping)?.reason == .notACaptureFile)
        let fragment = directory.write("fragment.pcap", Array(ClassicFixture().bytes.prefix(10)))
        #expect(openError(fragment, allowsMapping: allowsMapping)?.reason == .notACaptureFile)
    }

    @Test("A classic pcap file of an undecoded link type is named by libpcap's name and number")
    func unsupportedLinkType() {
        let directory = TemporaryDirectory()
        let path = directory.path("radiotap.pcap")
        writeWithPcapDump(path, dataLinkType: 127, snapLength: 65_535, nanosecond: false, records: [])
        let error = openError(path)
        #expect(error?.reason == .unsupportedLinkType(DataLinkType(rawValue: 127)))
        #expect(error?.call == "pcap_datalink")
        #expect(DataLinkType(rawValue: 127).name == "IEEE802_11_RADIO")
        #expect(error?.description.contains("unsupported link-layer type IEEE802_11_RADIO (127)") == true)
    }

    @Test("The decoded link types map from libpcap's numbers")
    func decodedLinkTypes() {
        #expect(DataLinkType(rawValue: 1).linkType == .ethernet)
        #expect(DataLinkType(rawValue: 12).linkType == .raw)
        #expect(DataLinkType(rawValue: 276).linkType == .linuxCooked2)
        #expect(DataLinkType(rawValue: 127).linkType == nil)
        #expect(DataLinkType(rawValue: 1).description == "EN10MB (1)")
        #expect(DataLinkType(rawValue: 99_999).description == "unknown (99999)")
    }
}
