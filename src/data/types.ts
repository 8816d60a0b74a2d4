// Shared data types of the data module.

export type DatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';

export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist', 'cifar10'];

/** A set of images with labels, uint8, NHWC, row-major: pixel (i, y, x, c) is images[((i*H + y)*W + x)*C + c]. */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  /** the dataset it came from (selects the default normalisation) */
  dataset?: DatasetName;
}

export interface Dataset {
  name: DatasetName;
  train: Split;
  test: Split;
  classes: string[];
  /** folder the files were read from */
  dir: string;
}
