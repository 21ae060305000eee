// libsystemd for Swift: the public headers of sd_notify/sd_listen_fds and of journal sending, nothing more.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
