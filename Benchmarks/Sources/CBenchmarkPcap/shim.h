// libpcap for the benchmark's reference loop: the public header, nothing more. Named apart from synwatch's
// CPcap, which is no product of the package and whose name would clash in one build.
#include <pcap/pcap.h>
