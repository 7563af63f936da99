#include "backend/awserr.h"
