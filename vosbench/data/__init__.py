"""Dataset layouts (DAVIS-2017, YouTube-VOS 2019), palette mask I/O, preparation and samplers."""
