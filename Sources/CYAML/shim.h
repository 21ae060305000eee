// libyaml for Swift: the public header, nothing more.
#include <yaml.h>
