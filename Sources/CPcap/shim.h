// libpcap for Swift: its public header, and the kernel's socket filter types, to replace a compiled filter on the
// capture's socket in one call (`PcapHandle.setFilter`).
#include <pcap/pcap.h>
#include <linux/filter.h>
