#ifndef DYNFS_KEYNAME_H
#define DYNFS_KEYNAME_H
#endif
