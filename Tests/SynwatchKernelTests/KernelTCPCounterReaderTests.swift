import Foundation
import Glibc
import SynwatchKernel
import SynwatchSystem
import Testing

@Suite struct KernelTCPCounterReaderTests {
    /// A fresh folder of the test's own, removed afterwards.
    private func withFolder(_ body: (String) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("synwatch-kernel-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(folder)
    }

    @Test func readsThisNamespacesFiles() throws {
        let counters = try KernelTCPCounterReader().read()
        #expect(counters.netstatPresent && counters.snmpPresent)
        #expect(KernelTCPCounter.allCases.allSatisfy { counters[$0] != nil })
        // Our own process is in the namespace /proc/net shows.
        let own = try KernelTCPCounterReader.process(getpid()).read()
        #expect(own.netstatPresent && own.snmpPresent)
    }

    @Test func namesItsFolders() {
        #expect(KernelTCPCounterReader().netDirectory == "/proc/net")
        #expect(KernelTCPCounterReader(procRoot: "/host/proc").netDirectory == "/host/proc/net")
        #expect(KernelTCPCounterReader.process(42).netDirectory == "/proc/42/net")
    }

    @Test func aMissingFolderOrFileIsNotAnError() throws {
        let nowhere = try KernelTCPCounterReader(netDirectory: "/nonexistent-synwatch/net").read()
        #expect(nowhere == KernelTCPCounters())

        try withFolder { folder in
            try RealProcFiles.floodedNetstat.write(toFile: folder + "/netstat", atomically: true, encoding: .utf8)
            let counters = try KernelTCPCounterReader(netDirectory: folder).read()
            #expect(counters.netstatPresent)
            #expect(!counters.snmpPresent)
            #expect(counters[.syncookiesSent] == 2000)
            #expect(counters[.activeOpens] == nil)
        }
    }

    @Test("The SYN proxy's counters are summed over the CPUs, and absent (not zero) without the file")
    func readsSynproxyCounters() throws {
        try withFolder { folder in
            try RealProcFiles.floodedNetstat.write(toFile: folder + "/netstat", atomically: true, encoding: .utf8)
            #expect(try KernelTCPCounterReader(netDirectory: folder).read().synproxy == nil)

            try FileManager.default.createDirectory(atPath: folder + "/stat", withIntermediateDirectories: false)
            try RealProcFiles.synproxy.write(toFile: folder + "/stat/synproxy", atomically: true, encoding: .utf8)
            let synproxy = try #require(try KernelTCPCounterReader(netDirectory: folder).read().synproxy)
            #expect(synproxy[.synReceived] == 0x3356 + 0x12f7)
            #expect(synproxy[.cookieInvalid] == 0x5 + 0xa)
            #expect(synproxy[.cookieValid] == 0x28 + 0x101)
            #expect(synproxy[.cookieRetrans] == 0)
            #expect(synproxy[.connReopened] == 0)
        }
        // A line of another length, or a value that is not hexadecimal, gives no values.
        let ragged = KernelSynproxyCounters(text: "entries\tsyn_received\n00000000\t00000010\n00000000\n")
        #expect(KernelSynproxyCounter.allCases.allSatisfy { ragged[$0] == nil })
        #expect(KernelSynproxyCounters(text: "entries\tsyn_received\n0\tzz\n")[.synReceived] == nil)
    }

    @Test("The SYN proxy's rates, and none where either sample lacks its counters")
    func synproxyRates() {
        let start = ContinuousClock.now
        func sample(_ seconds: Int, _ synproxy: KernelSynproxyCounters?) -> KernelTCPSample {
            var counters = KernelTCPCounters(netstat: RealProcFiles.floodedNetstat, snmp: nil)
            counters.synproxy = synproxy
            return KernelTCPSample(time: start + .seconds(seconds), counters: counters)
        }
        let earlier = sample(0, KernelSynproxyCounters([.synReceived: 1_000, .cookieValid: 10]))
        let later = sample(2, KernelSynproxyCounters([.synReceived: 9_000, .cookieValid: 50]))
        let rates = KernelTCPRates(from: earlier, to: later)
        #expect(rates?.perSecond(KernelSynproxyCounter.synReceived) == 4_000)
        #expect(rates?.perSecond(KernelSynproxyCounter.cookieValid) == 20)
        #expect(rates?.perSecond(KernelSynproxyCounter.cookieInvalid) == nil)
        #expect(KernelTCPRates(from: sample(0, nil), to: later)?.perSecond(KernelSynproxyCounter.synReceived) == nil)
    }

    @Test func readsFilesLargerThanOneRead() throws {
        try withFolder { folder in
            // 40 KiB of other tables before ours: more than one read's worth.
            let filler = (0..<2000).map { "Pad\($0): A\nPad\($0): 1\n" }.joined()
            try (filler + RealProcFiles.floodedNetstat).write(
                toFile: folder + "/netstat",
                atomically: true,
                encoding: .utf8
            )
            try RealProcFiles.floodedSnmp.write(toFile: folder + "/snmp", atomically: true, encoding: .utf8)
            let counters = try KernelTCPCounterReader(netDirectory: folder).read()
            #expect(counters[.listenOverflows] == 500)
            #expect(counters[.passiveOpens] == 5)
        }
    }

    @Test func otherFailuresNameTheCallTheFileAndErrno() throws {
        try withFolder { folder in
            try FileManager.default.createDirectory(atPath: folder + "/netstat", withIntermediateDirectories: false)
            let error = #expect(throws: SystemCallError.self) {
                try KernelTCPCounterReader(netDirectory: folder).read()
            }
            #expect(error == SystemCallError(call: "read", subject: folder + "/netstat", errno: EISDIR))
            #expect(error?.description == "read(\(folder)/netstat) failed: Is a directory (errno 21)")
        }
    }

    @Test func samplesCarryTheMonotonicTime() throws {
        let before = ContinuousClock.now
        let sample = try KernelTCPCounterReader().sample()
        #expect(sample.time >= before)
        #expect(sample.time <= ContinuousClock.now)
        #expect(sample.counters.netstatPresent)
    }
}
