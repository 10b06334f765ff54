#include "trace/trace-hw_iolab_virtio.h"
