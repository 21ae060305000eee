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
