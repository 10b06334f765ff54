#include "trace/trace-hw_vpri.h"
