/*
 * Private to lib/store/: defaults shared by the front-end and the SQLite
 * backend. Never installed; includes no SQLite header.
 */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#define VIGIL__STORE_DEFAULT_BUSY_MS 5000
#define VIGIL__STORE_DEFAULT_CACHE   1000000
#define VIGIL__STORE_DEFAULT_CHUNK   10000

#endif
