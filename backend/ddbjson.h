#ifndef DYNFS_DDBJSON_H
#define DYNFS_DDBJSON_H
#endif
