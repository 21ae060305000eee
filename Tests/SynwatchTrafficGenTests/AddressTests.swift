import SynwatchTrafficGen
import Testing

@Suite("Addresses")
struct AddressTests {
    @Test(
        "addresses parse and print in their canonical form",
        arguments: [
            "198.18.0.10", "0.0.0.0", "255.255.255.255", "2001:db8::a", "::", "::1", "2001:db8:0:1:1:1:1:1",
            "2001:db8::1:0:0:1", "fe80::", "1:2:3:4:5:6:7:8",
        ]
    )
    func roundTrip(text: String) throws {
        let address = try #require(NetAddress(text))
        #expect(address.description == text)
    }

    @Test(
        "malformed addresses are rejected",
        arguments: [
            "198.18.0", "198.18.0.256", "1.2.3.4.5", "2001:db8:::1", "1:2:3:4:5:6:7:8:9", "12345::", "", "::g",
        ]
    )
    func rejects(text: String) {
        #expect(NetAddress(text) == nil)
    }

    @Test("prefixes clear host bits, contain their addresses and permute without repeats")
    func prefixes() throws {
        let text = "198.18.17.99/20"
        let prefix = try #require(NetPrefix(text))
        #expect(prefix.description == "198.18.16.0/20")
        #expect(prefix.capacity == 4096)
        let all = Set((0..<UInt64(4096)).map(prefix.permutedAddress))
        #expect(all.count == 4096)
        #expect(all.allSatisfy(prefix.contains))
        #expect(!prefix.contains("198.18.32.0"))
        #expect(prefix.permutedAddress(7) == prefix.permutedAddress(7 + 4096))

        let v6: NetPrefix = "2001:db8:8000::/33"
        #expect(v6.capacity == .max)
        #expect(v6.contains(v6.permutedAddress(12345)))
        #expect(!v6.contains("2001:db8::1"))
        #expect(["2001:db8::/129", "10.0.0.0/33", "10.0.0.0", "10.0.0.0/x"].allSatisfy { NetPrefix($0) == nil })
    }

    @Test("services and VLAN tags parse from their command-line form")
    func endpointsAndTags() {
        #expect(Endpoint("198.18.0.10:80") == Endpoint("198.18.0.10", 80))
        #expect(Endpoint("[2001:db8::a]:443") == Endpoint("2001:db8::a", 443))
        #expect(Endpoint("2001:db8::a:443") == nil)
        #expect(Endpoint("198.18.0.10:70000") == nil)
        #expect(VLANTag("100") == VLANTag(.dot1Q, id: 100))
        #expect(VLANTag("802.1AD:200/5") == VLANTag(.dot1ad, id: 200, priority: 5))
        #expect(VLANTag("4096") == nil && VLANTag("802.1x:1") == nil && VLANTag("1/8") == nil)
    }

    @Test("the default plans keep every role apart inside the benchmarking ranges")
    func plans() {
        for plan in [AddressPlan.ipv4, .ipv6] {
            let outer: NetPrefix = plan.clients.family == .ipv4 ? "198.18.0.0/15" : "2001:db8::/32"
            let prefixes = [plan.clients, plan.crowd, plan.attackers, plan.spoofed, plan.reflectors]
            #expect(prefixes.allSatisfy { outer.contains($0.base) && $0.length >= outer.length })
            for (index, prefix) in prefixes.enumerated() {
                #expect(!plan.servers.contains(where: prefix.contains))
                for other in prefixes[(index + 1)...] {
                    #expect(!prefix.contains(other.base) && !other.contains(prefix.base))
                }
            }
        }
    }
}
