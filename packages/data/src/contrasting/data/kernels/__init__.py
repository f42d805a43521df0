"""The arithmetic of the augmentation ops per executor: batched torch (``torch_photometric``), DALI-native
(``dali_kernels``) and Numba inside DALI (``dali_numba``); ``ops`` dispatches to them."""
