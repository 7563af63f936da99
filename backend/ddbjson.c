#include "backend/ddbjson.h"
