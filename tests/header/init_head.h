/*
 * The head of the generated header test of the *_INIT macros (Makefile
 * `header-test`): the Makefile appends an #include of every public header
 * and, for every `#define VIGIL_X_INIT` they hold, one line instantiating
 * the struct vigil_x with it. Compiled as C99 and as C++11 with -pedantic
 * -Wall -Wextra -Werror, so that an INIT with a field too many, a field
 * missing (-Wmissing-field-initializers) or a value of the wrong type fails
 * the build; in C++ a versioned struct is also built at compile time and
 * its version checked against VIGIL_X_VERSION, so that an INIT whose first
 * value is not the version fails too.
 */
#ifdef __cplusplus
#define VT_INIT(T, M) \
    {                 \
        T x_ = M;     \
        (void)x_;     \
    }
#define VT_INIT_VERSIONED(T, M, V)                                                             \
    {                                                                                          \
        constexpr T x_ = M;                                                                    \
        static_assert(x_.version == (V), #M " starts with " #V " and builds at compile time"); \
        (void)x_;                                                                              \
    }
#else
#define VT_INIT(T, M) \
    {                 \
        T x_ = M;     \
        (void)x_;     \
    }
#define VT_INIT_VERSIONED(T, M, V) \
    {                              \
        T x_ = M;                  \
        if (x_.version != (V))     \
            return 1;              \
    }
#endif
