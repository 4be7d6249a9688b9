#ifndef HDLABEL_CZLIB_SHIM_H
#define HDLABEL_CZLIB_SHIM_H
#include <zlib.h>
#endif
