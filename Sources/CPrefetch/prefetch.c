// The module is its header: a C target needs one translation unit.
#include "CPrefetch.h"
