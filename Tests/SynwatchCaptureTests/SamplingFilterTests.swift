import CPcap
import Foundation
import SynwatchCapture
import SynwatchEngine
import SynwatchTestSupport
import Testing

@testable import SynwatchTrafficGen

/// A filter expression compiled by libpcap, optimised as `LiveCapture` does, and run on frames in memory with
/// `pcap_offline_filter`: what the kernel would do with them, without a network.
final class CompiledFilter {
    private let pcap: OpaquePointer
    private var program = bpf_program()
    /// libpcap's message when the expression did not compile.
    private(set) var error: String?

    /// Compiles for `linkType` alone, as for a capture file.
    convenience init(_ expression: String, linkType: LinkType) {
        self.init(expression, handle: pcap_open_dead(linkType.rawValue, 262_144))
    }

    /// Compiles for `handle`, which it then owns: an activated live handle gets libpcap's Linux VLAN handling
    /// (tags read from kernel metadata), which makes longer programs.
    init(_ expression: String, handle: OpaquePointer) {
        pcap = handle
        if pcap_compile(pcap, &program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            error = String(cString: pcap_geterr(pcap))
        }
    }

    deinit {
        pcap_freecode(&program)
        pcap_close(pcap)
    }

    /// The program's length, which the kernel caps at 4096 (`BPF_MAXINSNS`).
    var instructionCount: Int { Int(program.bf_len) }

    func passes(_ frame: [UInt8]) -> Bool {
        var header = pcap_pkthdr()
        header.caplen = UInt32(frame.count)
        header.len = header.caplen
        return frame.withUnsafeBufferPointer { pcap_offline_filter(&program, &header, $0.baseAddress!) != 0 }
    }
}

/// A link-layer framing the daemon may capture in, and the generator's way of writing it.
struct Framing: Sendable, CustomTestStringConvertible {
    var linkType: LinkType
    var layer: LinkLayer
    var tags: [VLANTag]
    var testDescription: String

    static let all = [
        Framing(linkType: .ethernet, layer: .ethernet, tags: [], testDescription: "Ethernet"),
        Framing(linkType: .ethernet, layer: .ethernet, tags: [VLANTag(id: 10)], testDescription: "802.1Q"),
        Framing(
            linkType: .ethernet,
            layer: .ethernet,
            tags: [VLANTag(.dot1ad, id: 20), VLANTag(id: 10)],
            testDescription: "802.1ad + 802.1Q"
        ),
        Framing(linkType: .linuxCooked, layer: .linuxCooked, tags: [], testDescription: "Linux cooked v1"),
        Framing(linkType: .linuxCooked2, layer: .linuxCooked2, tags: [], testDescription: "Linux cooked v2"),
    ]
}

/// Builds TCP frames between clients and services in one framing.
private struct FrameBuilder {
    let encoder: FrameEncoder

    init(_ framing: Framing) {
        encoder = FrameEncoder(linkType: framing.layer, vlanTags: framing.tags)
    }

    func frame(
        from source: NetAddress,
        _ sourcePort: UInt16,
        to destination: NetAddress,
        _ destinationPort: UInt16,
        flags: Flags,
        payload: Int = 0
    ) -> [UInt8] {
        var segment = Segment(
            time: 0,
            from: source,
            sourcePort,
            to: destination,
            destinationPort,
            sequence: 1000,
            acknowledgment: flags.contains(.ack) ? 2000 : 0,
            flags: flags,
            window: 64240,
            inbound: true
        )
        segment.payloadLength = payload
        var bytes = [UInt8](repeating: 0, count: encoder.frameLength(segment))
        bytes.withUnsafeMutableBytes { encoder.encode(segment, into: $0.baseAddress!) }
        return bytes
    }
}

extension NetAddress {
    /// The engine's form of the address (IPv4-mapped for IPv4).
    fileprivate var engineAddress: IPAddress {
        family == .ipv4 ? IPAddress(ipv4: ipv4) : IPAddress(high: high, low: low)
    }

    /// A random address of `family`: any IPv4 address, or one in 2001:db8::/32.
    fileprivate static func random(_ family: AddressFamily, using generator: inout SeededRandom) -> NetAddress {
        family == .ipv4
            ? NetAddress(ipv4: generator.next32())
            : NetAddress(ipv6High: 0x2001_0DB8_0000_0000 | generator.next() >> 32, low: generator.next())
    }
}

/// What the filter did with a client's SYN and SYN-ACK when they disagree with `ClientSampling.keeps`.
private func disagreements(
    _ filter: CompiledFilter,
    _ builder: FrameBuilder,
    service: Endpoint,
    clients: [NetAddress],
    keeps: (NetAddress) -> Bool
) -> [String] {
    clients.compactMap { client in
        let syn = filter.passes(builder.frame(from: client, 40000, to: service.address, service.port, flags: .syn))
        let synAck = filter.passes(
            builder.frame(from: service.address, service.port, to: client, 40000, flags: .synAck)
        )
        let kept = keeps(client)
        return syn == kept && synAck == kept ? nil : "\(client): kept \(kept), SYN \(syn), SYN-ACK \(synAck)"
    }
}

/// Whether every segment of an unkept client's exchange with port 443 of the first server but the opening SYN
/// and SYN-ACK passes, and so do its SYNs to another port of that host and to another host.
private func passesAllButHandshakeOpenings(
    _ filter: CompiledFilter,
    _ builder: FrameBuilder,
    client: NetAddress,
    family: AddressFamily
) -> Bool {
    let host = server(family)
    let toService: [(Flags, Int)] = [(.ack, 0), (.rst, 0), (.rstAck, 0), (.finAck, 0), (.pshAck, 300)]
    let fromService: [(Flags, Int)] = [(.ack, 0), (.rstAck, 0), (.finAck, 0), (.pshAck, 900)]
    var frames = toService.map { builder.frame(from: client, 40000, to: host, 443, flags: $0, payload: $1) }
    frames += fromService.map { builder.frame(from: host, 443, to: client, 40000, flags: $0, payload: $1) }
    for (other, port) in [(host, UInt16(8443)), (server(family, 1), 443)] {
        frames.append(builder.frame(from: client, 40000, to: other, port, flags: .syn))
        frames.append(builder.frame(from: other, port, to: client, 40000, flags: .synAck))
    }
    return frames.allSatisfy(filter.passes)
}

/// The generator's flags (the engine has a type of the same name).
private typealias Flags = SynwatchTrafficGen.TCPFlags

private let sampling = ClientSampling(multiplier: 2_654_435_761)
private let otherSampling = ClientSampling(multiplier: 0x85EB_CA77)

/// As many services as may be thinned at once: alternately IPv4 and IPv6, every fourth a whole host.
private let servicesAtTheLimit = (0..<ClientSampling.maximumServices).map { index in
    let address = NetAddress(index.isMultiple(of: 2) ? "198.18.0.\(20 + index)" : "2001:db8::\(20 + index)")!
    return Endpoint(address, index % 4 == 3 ? 0 : UInt16(80 + index))
}

private func server(_ family: AddressFamily, _ index: Int = 0) -> NetAddress {
    AddressPlan.default(for: family).servers[index]
}

@Suite(.serialized)
struct SamplingFilterTests {
    @Test(
        "A sampled service's SYNs and SYN-ACKs pass exactly for kept clients, everything else passes",
        arguments: Framing.all,
        [AddressFamily.ipv4, .ipv6]
    )
    func thinsOneService(framing: Framing, family: AddressFamily) throws {
        let builder = FrameBuilder(framing)
        let service = Endpoint(server(family), 443)
        var generator = SeededRandom(seed: 0x5A3F_0001)
        let clients = (0..<4096).map { _ in NetAddress.random(family, using: &generator) }
        for shift in [1, 4, ClientSampling.maximumShift] {
            let expression = LiveCaptureOptions.engineFilter(
                for: framing.linkType,
                thinning: [SampledService(address: service.address.engineAddress, port: service.port, shift: shift)],
                sampling: sampling
            )
            let filter = CompiledFilter(expression, linkType: framing.linkType)
            try #require(filter.error == nil, "\(expression)")
            let keeps = { (client: NetAddress) in sampling.keeps(client.engineAddress, shift: shift) }

            let wrong = disagreements(filter, builder, service: service, clients: clients, keeps: keeps)
            #expect(wrong.isEmpty, "shift \(shift): \(wrong.count) wrong, such as \(wrong.prefix(3))")

            // A loose check of the hash: about one client in 2^shift is kept.
            let share = Double(clients.filter(keeps).count) / Double(clients.count)
            let expected = 1 / Double(1 << Int(shift))
            #expect(share > expected / 2 && share < expected * 2, "shift \(shift): kept \(share)")

            let unkept = clients.filter { !keeps($0) }.prefix(200)
            #expect(unkept.count == 200)
            let dropped = unkept.filter { !passesAllButHandshakeOpenings(filter, builder, client: $0, family: family) }
            #expect(dropped.isEmpty, "shift \(shift): other segments of \(dropped.prefix(3)) were dropped")
        }
    }

    @Test("Port 0 thins every port of the host", arguments: Framing.all, [AddressFamily.ipv4, .ipv6])
    func wholeHost(framing: Framing, family: AddressFamily) throws {
        let builder = FrameBuilder(framing)
        let host = server(family)
        let expression = LiveCaptureOptions.engineFilter(
            for: framing.linkType,
            thinning: [SampledService(address: host.engineAddress, port: 0, shift: 4)],
            sampling: sampling
        )
        let filter = CompiledFilter(expression, linkType: framing.linkType)
        try #require(filter.error == nil, "\(expression)")
        var generator = SeededRandom(seed: 0x5A3F_0002)
        let clients = (0..<1024).map { _ in NetAddress.random(family, using: &generator) }
        let keeps = { (client: NetAddress) in sampling.keeps(client.engineAddress, shift: 4) }
        for port: UInt16 in [22, 80, 443, 65535] {
            let wrong = disagreements(filter, builder, service: Endpoint(host, port), clients: clients, keeps: keeps)
            #expect(wrong.isEmpty, "port \(port): \(wrong.count) wrong, such as \(wrong.prefix(3))")
        }
        let otherHost = Endpoint(server(family, 1), 80)
        let wrong = disagreements(filter, builder, service: otherHost, clients: clients) { _ in true }
        #expect(wrong.isEmpty, "another host: \(wrong.count) dropped, such as \(wrong.prefix(3))")
    }

    @Test(
        "IPv6 clients that differ only in their prefix are kept one in 2^shift, by the filter as by the engine",
        arguments: Framing.all
    )
    func prefixOnlyClients(framing: Framing) throws {
        let builder = FrameBuilder(framing)
        let service = Endpoint(server(.ipv6), 443)
        // Random /64 prefixes, one interface ID: while the test read the last 32 bits, all were kept or none.
        var generator = SeededRandom(seed: 0x5A3F_0005)
        let clients = (0..<4096).map { _ in
            NetAddress(ipv6High: 0x2001_0DB8_0000_0000 | generator.next() >> 32, low: 1)
        }
        let thinned = SampledService(address: service.address.engineAddress, port: service.port, shift: 4)
        let expression = LiveCaptureOptions.engineFilter(for: framing.linkType, thinning: [thinned], sampling: sampling)
        let filter = CompiledFilter(expression, linkType: framing.linkType)
        try #require(filter.error == nil, "\(expression)")
        let keeps = { (client: NetAddress) in sampling.keeps(client.engineAddress, shift: 4) }
        let wrong = disagreements(filter, builder, service: service, clients: clients, keeps: keeps)
        #expect(wrong.isEmpty, "\(wrong.count) wrong, such as \(wrong.prefix(3))")
        // 256 expected; the binomial's deviation is 15.5.
        let kept = clients.filter(keeps).count
        #expect((256 - 80...256 + 80).contains(kept), "kept \(kept)")
    }

    @Test("Two multipliers keep different clients, each as its own ClientSampling says")
    func multipliers() throws {
        let builder = FrameBuilder(Framing.all[0])
        let service = Endpoint(server(.ipv4), 443)
        var generator = SeededRandom(seed: 0x5A3F_0003)
        let clients = (0..<4096).map { _ in NetAddress.random(.ipv4, using: &generator) }
        var keptSets = [Set<NetAddress>]()
        for sampling in [sampling, otherSampling] {
            let thinned = SampledService(address: service.address.engineAddress, port: service.port, shift: 2)
            let expression = LiveCaptureOptions.engineFilter(for: .ethernet, thinning: [thinned], sampling: sampling)
            let filter = CompiledFilter(expression, linkType: .ethernet)
            try #require(filter.error == nil, "\(expression)")
            let keeps = { (client: NetAddress) in sampling.keeps(client.engineAddress, shift: 2) }
            #expect(disagreements(filter, builder, service: service, clients: clients, keeps: keeps).isEmpty)
            keptSets.append(
                Set(
                    clients.filter {
                        filter.passes(builder.frame(from: $0, 40000, to: service.address, service.port, flags: .syn))
                    }
                )
            )
        }
        // Independent choices of a quarter each share about a sixteenth of the clients.
        let shared = keptSets[0].intersection(keptSets[1]).count
        #expect(keptSets[0] != keptSets[1])
        #expect(shared < min(keptSets[0].count, keptSets[1].count) / 2, "\(shared) kept by both")
    }

    @Test("The most services, IPv4 and IPv6, fit the kernel's 4096 instructions with room to spare")
    func mostServices() throws {
        let expression = LiveCaptureOptions.engineFilter(
            for: .ethernet,
            thinning: servicesAtTheLimit.map {
                SampledService(address: $0.address.engineAddress, port: $0.port, shift: ClientSampling.maximumShift)
            },
            sampling: sampling
        )
        let filter = CompiledFilter(expression, linkType: .ethernet)
        try #require(filter.error == nil, "\(expression)")
        // Half the kernel's limit: 1,280 since IPv6 clients are mixed from all four words of their address.
        #expect(filter.instructionCount < 2048, "\(filter.instructionCount) instructions")

        // Each service is still thinned as its own, under two tags too.
        let builder = FrameBuilder(Framing.all[2])
        var generator = SeededRandom(seed: 0x5A3F_0004)
        let keeps = { (client: NetAddress) in sampling.keeps(client.engineAddress, shift: ClientSampling.maximumShift) }
        for service in servicesAtTheLimit {
            let clients = (0..<512).map { _ in NetAddress.random(service.address.family, using: &generator) }
            let target = service.port == 0 ? Endpoint(service.address, 8080) : service
            let wrong = disagreements(filter, builder, service: target, clients: clients, keeps: keeps)
            #expect(wrong.isEmpty, "\(service): \(wrong.count) wrong, such as \(wrong.prefix(3))")
        }
    }

    @Test("No service to thin (or only shift 0) gives the engine's own filter", arguments: LinkType.allCases)
    func noServices(linkType: LinkType) {
        let plain = LiveCaptureOptions.engineFilter(for: linkType)
        #expect(LiveCaptureOptions.engineFilter(for: linkType, thinning: [], sampling: sampling) == plain)
        let unthinned = SampledService(address: server(.ipv4).engineAddress, port: 80, shift: 0)
        #expect(LiveCaptureOptions.engineFilter(for: linkType, thinning: [unthinned], sampling: sampling) == plain)
        #expect(plain == (linkType == .ethernet ? "tcp or (vlan and (tcp or (vlan and tcp)))" : "tcp"))
    }

    @Test(
        "setFilter replaces a live capture's filter for the frames sent afterwards; a bad one changes nothing",
        .enabled(if: NetworkLab.isAvailable, NetworkLab.unavailableReason)
    )
    func setFilterOnLiveCapture() throws {
        let lab = try NetworkLab()
        let directory = TemporaryDirectory()
        let parts: [(family: AddressFamily, tags: [VLANTag])] = [
            (.ipv4, []), (.ipv6, [VLANTag(id: 10)]), (.ipv4, [VLANTag(.dot1ad, id: 20), VLANTag(id: 10)]),
        ]
        var files = [String]()
        var sources = [IPAddress]()
        for (index, part) in parts.enumerated() {
            let file = directory.path("flood\(index).pcap")
            try SpoofedBulk(seed: UInt64(index + 1), packets: 400, sources: 400, family: part.family)
                .write(to: file, vlanTags: part.tags)
            try CaptureFileReader(.file(file)).forEachFrame { frame in
                var segment = TCPSegment.empty
                if PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment) == .tcp {
                    sources.append(segment.source)
                }
            }
            files.append(file)
        }
        let capture = try LiveCapture(interface: lab.capturePort)
        let original = capture.filter

        let error = #expect(throws: CaptureError.self) { try capture.setFilter("tcp and bogus") }
        #expect(error?.reason == .captureSetupFailed)
        #expect(error?.call == "pcap_compile")
        #expect(capture.filter == original)

        let services = [AddressFamily.ipv4, .ipv6].map {
            SampledService(address: server($0).engineAddress, port: 80, shift: 2)
        }
        let expression = LiveCaptureOptions.engineFilter(for: capture.linkType, thinning: services, sampling: sampling)
        try capture.setFilter(expression)
        #expect(capture.filter == expression)

        let kept = sources.filter { sampling.keeps($0, shift: 2) }
        #expect(kept.count > 200 && kept.count < 400)
        let replay = try lab.startReplay(files, pps: 4000)
        let frames = try collect(capture, expected: kept.count)
        replay.waitUntilExit()
        #expect(frames.compactMap { $0.segment?.source }.sorted() == kept.sorted())
        // Only what passed the kernel's filter reached the socket: the filter ran there, not in libpcap.
        #expect(try capture.statistics().received == UInt32(kept.count))
    }

    @Test(
        "The most services fit the kernel's limit on a live Ethernet handle too, where libpcap's VLAN tests grow",
        .enabled(if: NetworkLab.isAvailable, NetworkLab.unavailableReason)
    )
    func mostServicesLive() throws {
        let lab = try NetworkLab()
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let handle = try #require(pcap_create(lab.capturePort, &errorBuffer))
        guard pcap_activate(handle) >= 0 else {
            Issue.record("pcap_activate: \(String(cString: pcap_geterr(handle)))")
            pcap_close(handle)
            return
        }
        let expression = LiveCaptureOptions.engineFilter(
            for: .ethernet,
            thinning: servicesAtTheLimit.map {
                SampledService(address: $0.address.engineAddress, port: $0.port, shift: ClientSampling.maximumShift)
            },
            sampling: sampling
        )
        let filter = CompiledFilter(expression, handle: handle)
        try #require(filter.error == nil, "\(expression)")
        #expect(filter.instructionCount < 3072, "\(filter.instructionCount) instructions")
    }
}
