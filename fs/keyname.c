#include "fs/keyname.h"
