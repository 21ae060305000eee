// libpcap for Swift: the public header, nothing more.
#include <pcap/pcap.h>
